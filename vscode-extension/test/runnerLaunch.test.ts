import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { buildRunnerLaunch, findOnPath, findRepoRoot, isSentryVibeRepo, RUNNER_ID_ENV, RUNNER_TOKEN_ENV, splitCommand } from '../src/core/runnerLaunch';

describe('runner launch', () => {
  it('Runs_the_installed_runner_with_the_token_and_id_in_its_environment_not_its_arguments', () => {
    const l = buildRunnerLaunch({ brokerUrl: 'ws://localhost:5090', token: 's3cret', runnerId: 'vscode-ada', workspaceRoot: '/home/ada/my apps' });
    assert.equal(l.executable, 'sentryvibe-runner');
    assert.deepEqual(l.args, ['run', '--broker', 'ws://localhost:5090']);
    assert.deepEqual(l.env, { Runner__Token: 's3cret', Runner__Id: 'vscode-ada', WORKSPACE_ROOT: '/home/ada/my apps' });
    assert.ok(!l.args.some((a) => a.includes('s3cret')));
    assert.equal(l.cwd, undefined);
    assert.equal(l.fromSource, false);
  });

  it('Hides_the_token_in_the_displayed_command', () => {
    const l = buildRunnerLaunch({ brokerUrl: 'ws://b', token: 's3cret', workspaceRoot: '/w s' });
    assert.ok(!l.display.includes('s3cret'));
    assert.equal(l.display, "Runner__Token=*** WORKSPACE_ROOT='/w s' sentryvibe-runner run --broker ws://b");
  });

  it('Gives_a_real_process_its_token_in_the_environment_and_never_on_its_command_line', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
    // A stand-in runner: reports what it received, then waits to be stopped, so its /proc entries can be read.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-fake-runner-'));
    const script = path.join(dir, 'runner.js');
    fs.writeFileSync(script, `process.stdout.write(JSON.stringify({ token: process.env.${RUNNER_TOKEN_ENV}, id: process.env.${RUNNER_ID_ENV}, argv: process.argv.slice(2) }) + '\\n'); setInterval(() => {}, 1000);`);
    const token = 'svr_' + 'x'.repeat(40);
    const l = buildRunnerLaunch({ brokerUrl: 'ws://127.0.0.1:1', token, runnerId: 'vscode-test', command: `"${process.execPath}" "${script}"` });
    const child = spawn(l.executable, l.args, { env: { ...process.env, ...l.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const first = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.on('error', reject);
        child.on('exit', (code) => reject(new Error(`stand-in runner exited with ${code}`)));
      });
      assert.deepEqual(JSON.parse(first), { token, id: 'vscode-test', argv: ['run', '--broker', 'ws://127.0.0.1:1'] });
      // What any local user sees (ps, /proc/<pid>/cmdline is world-readable) holds no token...
      const cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
      assert.ok(cmdline.includes('ws://127.0.0.1:1'), cmdline);
      assert.ok(!cmdline.includes(token), 'token on the command line');
      // ...the environment has it, and only the owner may read that (mode 0400 in /proc).
      assert.ok(fs.readFileSync(`/proc/${child.pid}/environ`, 'utf8').includes(`${RUNNER_TOKEN_ENV}=${token}`));
      assert.equal(fs.statSync(`/proc/${child.pid}/environ`).mode & 0o077, 0);
    } finally {
      child.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Runs_from_source_with_dotnet_run_when_the_workspace_is_this_repository', () => {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-repo-'));
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-other-'));
    try {
      fs.mkdirSync(path.join(repo, 'Runner'));
      fs.writeFileSync(path.join(repo, 'Runner', 'SentryVibe.Runner.csproj'), '<Project />');
      assert.equal(isSentryVibeRepo(repo), true);
      assert.equal(isSentryVibeRepo(other), false);
      assert.equal(findRepoRoot([other, repo]), repo);
      const l = buildRunnerLaunch({ brokerUrl: 'ws://b', token: 't', repoRoot: findRepoRoot([other, repo]), command: 'ignored-when-from-source' });
      assert.equal(l.executable, 'dotnet');
      assert.deepEqual(l.args, ['run', '--project', path.join('Runner', 'SentryVibe.Runner.csproj'), '--', 'run', '--broker', 'ws://b']);
      assert.deepEqual(l.env, { Runner__Token: 't' });
      assert.equal(l.cwd, repo);
      assert.equal(l.fromSource, true);
    } finally {
      fs.rmSync(repo, { recursive: true, force: true });
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('Splits_a_configured_command_with_quotes_and_keeps_its_extra_words', () => {
    assert.deepEqual(splitCommand('npx -y sentryvibe-runner'), ['npx', '-y', 'sentryvibe-runner']);
    assert.deepEqual(splitCommand('"/opt/Sentry Vibe/runner" --verbose'), ['/opt/Sentry Vibe/runner', '--verbose']);
    assert.deepEqual(splitCommand("'' x"), ['', 'x']);
    assert.throws(() => splitCommand('"unbalanced'), /Unbalanced/);
    const l = buildRunnerLaunch({ brokerUrl: 'ws://b', command: 'npx -y sentryvibe-runner', runnerName: 'ada (VS Code)' });
    assert.equal(l.executable, 'npx');
    assert.deepEqual(l.args, ['-y', 'sentryvibe-runner', 'run', '--broker', 'ws://b', '--name', 'ada (VS Code)']);
    assert.deepEqual(l.env, {});
  });

  it('Refuses_to_build_a_command_without_a_broker_url', () => {
    assert.throws(() => buildRunnerLaunch({ brokerUrl: '  ' }), /broker URL/);
  });
});

describe('findOnPath', () => {
  it('Finds_an_executable_on_PATH_or_by_path_and_says_undefined_otherwise', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-bin-'));
    try {
      const exe = path.join(dir, 'sentryvibe-runner');
      fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
      assert.equal(findOnPath('sentryvibe-runner', { PATH: `/nonexistent:${dir}` }, 'linux'), exe);
      assert.equal(findOnPath(exe, { PATH: '' }, 'linux'), exe);
      assert.equal(findOnPath('sentryvibe-runner', { PATH: '/nonexistent' }, 'linux'), undefined);
      fs.writeFileSync(path.join(dir, 'runner.CMD'), '');
      assert.equal(findOnPath('runner', { Path: dir, PATHEXT: '.EXE;.CMD' }, 'win32'), path.join(dir, 'runner.CMD'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
