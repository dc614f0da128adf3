// Builds the command that starts a runner in a terminal: an argument vector (never a concatenated
// command line), the environment, and a display form with the token hidden. The token and the runner id go in the
// environment, never in the arguments: a process's command line is readable by every local user (/proc/<pid>/cmdline,
// `ps`), its environment only by its owner.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The runner's own configuration names (`Runner:Token`, `Runner:Id` in Runner/Link/RunnerOptions.cs, read from the
 * environment as `Runner__Token`/`Runner__Id`). They come before the seed's RUNNER_SHARED_SECRET/RUNNER_ID
 * (Runner/Link/LinkExtensions.cs ResolveSettings), so a secret the user exported in their shell cannot shadow them.
 */
export const RUNNER_TOKEN_ENV = 'Runner__Token';
export const RUNNER_ID_ENV = 'Runner__Id';

export interface RunnerLaunchInput {
  brokerUrl: string;
  /** Put in the runner's environment (RUNNER_TOKEN_ENV), never its arguments. */
  token?: string;
  /** `sentryvibe.runner.command`; default `sentryvibe-runner`. May hold extra words ("npx sentryvibe-runner"). */
  command?: string;
  /** WORKSPACE_ROOT for the runner, when the user chose one. */
  workspaceRoot?: string;
  /** Root of the SentryVibe repository when the open workspace is it: then the runner runs from source. */
  repoRoot?: string;
  /** The id a bound runner token links as; put in the environment (RUNNER_ID_ENV). */
  runnerId?: string;
  runnerName?: string;
}

export interface RunnerLaunch {
  executable: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** For the terminal title and logs: the token replaced with ***. */
  display: string;
  fromSource: boolean;
}

export const RUNNER_PROJECT = path.join('Runner', 'SentryVibe.Runner.csproj');

/** True when `folder` is a checkout of this repository (it has the Runner project). */
export function isSentryVibeRepo(folder: string): boolean {
  return fs.existsSync(path.join(folder, RUNNER_PROJECT));
}

/** The first folder that is the repository, if any. */
export function findRepoRoot(folders: readonly string[]): string | undefined {
  return folders.find(isSentryVibeRepo);
}

export function buildRunnerLaunch(input: RunnerLaunchInput): RunnerLaunch {
  if (!input.brokerUrl?.trim()) throw new Error('No broker URL: set "sentryvibe.runner.brokerUrl" or start a local AppHost.');
  const runArgs = ['run', '--broker', input.brokerUrl.trim()];
  if (input.runnerName) runArgs.push('--name', input.runnerName);

  const env: Record<string, string> = {};
  if (input.token) env[RUNNER_TOKEN_ENV] = input.token;
  if (input.runnerId) env[RUNNER_ID_ENV] = input.runnerId;
  if (input.workspaceRoot) env.WORKSPACE_ROOT = input.workspaceRoot;

  let executable: string;
  let args: string[];
  let cwd: string | undefined;
  if (input.repoRoot) {
    executable = 'dotnet';
    args = ['run', '--project', RUNNER_PROJECT, '--', ...runArgs];
    cwd = input.repoRoot;
  } else {
    const words = splitCommand(input.command?.trim() || 'sentryvibe-runner');
    executable = words[0]!;
    args = [...words.slice(1), ...runArgs];
  }
  const shown = [executable, ...args].map(quoteForDisplay).join(' ');
  const envShown = Object.entries(env)
    .map(([k, v]) => `${k}=${k === RUNNER_TOKEN_ENV ? '***' : quoteForDisplay(v)} `)
    .join('');
  return { executable, args, env, cwd, display: envShown + shown, fromSource: Boolean(input.repoRoot) };
}

/** Splits a settings value like `npx -y sentryvibe-runner` or `"C:\Program Files\sv\runner.exe"` into words. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let current = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (const ch of command) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`Unbalanced quote in runner command: ${command}`);
  if (inWord) words.push(current);
  if (words.length === 0) throw new Error('The runner command is empty.');
  return words;
}

function quoteForDisplay(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Where `executable` would be found: itself when it is a path, else the first match on PATH (with PATHEXT on
 * Windows). Undefined when it is not there, so the user hears why instead of a terminal that dies at once.
 */
export function findOnPath(executable: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  const isFile = (p: string) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  const exts = platform === 'win32' ? ['', ...(env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean)] : [''];
  if (executable.includes('/') || (platform === 'win32' && executable.includes('\\'))) {
    return exts.map((e) => executable + e).find(isFile);
  }
  const dirs = (env.PATH ?? env.Path ?? '').split(platform === 'win32' ? ';' : ':').filter(Boolean);
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, executable + ext);
      if (isFile(candidate)) return candidate;
    }
  }
  return undefined;
}
