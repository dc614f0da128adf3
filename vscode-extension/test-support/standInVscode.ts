// A stand-in `vscode` module and a loader that activates the real bundle against it, so the extension's wiring runs
// under node --test without VS Code. Used by activation.test.ts and signIn.activation.test.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

/** The package root (tests run from out-test/test-support/). */
export const root = path.resolve(__dirname, '..', '..');

export class EventEmitter<T> {
  private listeners: ((e: T) => void)[] = [];
  event = (listener: (e: T) => void) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(e: T) {
    for (const l of this.listeners) l(e);
  }
  dispose() {
    this.listeners = [];
  }
}

export interface QuickPickItem { label: string; description?: string }

/** What the user "does": answers to input boxes and quick picks, in order, and which message button to press. */
export interface Script {
  inputs: string[];
  picks: ((items: QuickPickItem[]) => QuickPickItem | undefined)[];
  onMessage?: (text: string, actions: string[]) => string | undefined;
}

/** `workspace`: what a cloned repository's .vscode/settings.json would say; machine-scoped settings must ignore it. */
export function fakeVscode(settings: Record<string, string>, script: Script, workspace: Record<string, string> = {}) {
  const commands = new Map<string, (...args: unknown[]) => unknown>();
  const statusBar = { text: '', tooltip: '', visible: false, command: '', name: '', backgroundColor: undefined as unknown, show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
  const messages: { level: string; text: string; actions: string[] }[] = [];
  const progress: string[] = [];
  const output: string[] = [];
  const pickTitles: string[] = [];
  const terminals: { shellPath?: string; shellArgs?: string[]; env?: Record<string, string>; message?: string; isTransient?: boolean }[] = [];
  /** The Projects view (createTreeView): its description says who is signed in. */
  const treeView = {
    description: undefined as string | undefined,
    provider: undefined as { getChildren(node?: unknown): Promise<unknown[]> } | undefined,
    dispose() {},
  };
  /** Every input box shown (title, password), in order. */
  const inputBoxes: { title?: string; password?: boolean; value?: string }[] = [];
  /** VS Code announces a settings change; the stand-in does too when the extension writes one. */
  const configChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
  /** What was opened in the browser (env.openExternal). */
  const opened: string[] = [];
  /** User settings written by the extension. */
  const updates: { key: string; value: unknown }[] = [];
  const disposable = { dispose() {} };
  const message = (level: string) => async (text: string, ...rest: unknown[]) => {
    const actions = rest.filter((r): r is string => typeof r === 'string');
    messages.push({ level, text, actions });
    return script.onMessage?.(text, actions);
  };
  const api = {
    EventEmitter,
    StatusBarAlignment: { Left: 1, Right: 2 },
    ProgressLocation: { Notification: 15 },
    ViewColumn: { Beside: -2 },
    ConfigurationTarget: { Global: 1 },
    TreeItemCollapsibleState: { None: 0, Collapsed: 1 },
    ThemeColor: class { constructor(readonly id: string) {} },
    ThemeIcon: class { constructor(readonly id: string) {} },
    TreeItem: class { constructor(readonly label: string) {} },
    MarkdownString: class { constructor(readonly value: string) {} },
    Uri: { file: (p: string) => ({ fsPath: p }), joinPath: (u: { fsPath: string }, ...s: string[]) => ({ fsPath: path.join(u.fsPath, ...s) }), parse: (s: string) => ({ toString: () => s }) },
    window: {
      createOutputChannel: () => ({ appendLine: (l: string) => output.push(l), show() {}, dispose() {} }),
      createStatusBarItem: () => statusBar,
      createTerminal: (o: (typeof terminals)[number]) => {
        terminals.push(o);
        return { show() {}, dispose() {} };
      },
      onDidCloseTerminal: () => disposable,
      registerTreeDataProvider: () => disposable,
      createTreeView: (_id: string, o: { treeDataProvider: typeof treeView.provider }) => {
        treeView.provider = o.treeDataProvider;
        return treeView;
      },
      setStatusBarMessage: () => disposable,
      showErrorMessage: message('error'),
      showWarningMessage: message('warning'),
      showInformationMessage: message('info'),
      showInputBox: async (o: { title?: string; password?: boolean; value?: string; validateInput?: (v: string) => string | undefined }) => {
        inputBoxes.push({ title: o.title, password: o.password, value: o.value });
        const answer = script.inputs.shift();
        if (answer !== undefined) assert.equal(o.validateInput?.(answer), undefined, `input "${answer}" is valid`);
        return answer;
      },
      showQuickPick: async (items: QuickPickItem[] | Promise<QuickPickItem[]>, o?: { title?: string }) => {
        pickTitles.push(o?.title ?? '');
        return script.picks.shift()?.(await items);
      },
      withProgress: async <R>(_o: unknown, task: (p: { report(v: { message?: string }): void }, t: unknown) => Promise<R>) =>
        task(
          { report: (v) => v.message && progress.push(v.message) },
          { isCancellationRequested: false, onCancellationRequested: () => disposable },
        ),
    },
    commands: {
      registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
        assert.ok(!commands.has(id), `${id} registered twice`);
        commands.set(id, fn);
        return { dispose: () => commands.delete(id) };
      },
      executeCommand: async () => undefined,
    },
    workspace: {
      onDidChangeConfiguration: configChanged.event,
      getConfiguration: () => ({
        get: (key: string) => workspace[key] ?? settings[key] ?? '',
        inspect: (key: string) => ({ defaultValue: '', globalValue: settings[key], workspaceValue: workspace[key] }),
        update: async (key: string, value: unknown) => {
          updates.push({ key, value });
          if (typeof value === 'string') settings[key] = value;
          else delete settings[key];
          configChanged.fire({ affectsConfiguration: (section: string) => `sentryvibe.${key}`.startsWith(section) });
        },
      }),
      workspaceFolders: undefined,
    },
    env: {
      asExternalUri: async (u: unknown) => u,
      openExternal: async (u: unknown) => {
        opened.push(String(u));
        return true;
      },
    },
  };
  return { api, commands, statusBar, messages, progress, output, pickTitles, terminals, treeView, opened, updates, inputBoxes };
}

export type FakeVscode = ReturnType<typeof fakeVscode>;

const moduleInternals = Module as unknown as { _resolveFilename: (r: string, ...rest: unknown[]) => string; _cache: Record<string, unknown> };

/** The bundle built once per test file; `require('vscode')` in it resolves to the stand-in of the running test. */
export class ExtensionBundle {
  private outDir = '';
  private savedHome: string | undefined;
  private readonly originalResolve = moduleInternals._resolveFilename;
  /** The stand-in SecretStorage of the current activation. */
  secrets = new Map<string, string>();

  async build(): Promise<void> {
    this.outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-ext-'));
    // Hermetic: whatever AppHost runs on this machine, its apphost.json is not read.
    this.savedHome = process.env.SENTRYVIBE_HOME;
    process.env.SENTRYVIBE_HOME = this.outDir;
    await esbuild.build({ entryPoints: [path.join(root, 'src', 'extension.ts')], bundle: true, platform: 'node', format: 'cjs', external: ['vscode'], outfile: path.join(this.outDir, 'extension.js'), logLevel: 'silent' });
    const fakePath = path.join(this.outDir, 'vscode-stand-in.js');
    fs.writeFileSync(fakePath, 'module.exports = globalThis.__vscodeStandIn;');
    const original = this.originalResolve;
    moduleInternals._resolveFilename = (request: string, ...rest: unknown[]) => (request === 'vscode' ? fakePath : original(request, ...rest));
  }

  /** Where a test may write an apphost.json (SENTRYVIBE_HOME during the tests). */
  get home(): string {
    return this.outDir;
  }

  dispose(): void {
    moduleInternals._resolveFilename = this.originalResolve;
    if (this.savedHome === undefined) delete process.env.SENTRYVIBE_HOME;
    else process.env.SENTRYVIBE_HOME = this.savedHome;
    fs.rmSync(this.outDir, { recursive: true, force: true });
  }

  /** Activates a fresh copy of the bundle; the returned function disposes its subscriptions. */
  activate(fake: FakeVscode, secrets: Map<string, string> = new Map()): () => void {
    this.secrets = secrets;
    (globalThis as { __vscodeStandIn?: unknown }).__vscodeStandIn = fake.api;
    const bundle = path.join(this.outDir, 'extension.js');
    for (const key of Object.keys(moduleInternals._cache)) if (key.startsWith(this.outDir)) delete moduleInternals._cache[key];
    const extension = require(bundle) as { activate(c: unknown): void };
    const subscriptions: { dispose(): void }[] = [];
    // Like VS Code's SecretStorage, a change is announced to onDidChange.
    const changed = new EventEmitter<{ key: string }>();
    extension.activate({
      subscriptions,
      extensionUri: { fsPath: root },
      extension: { packageJSON: { version: '0.1.0' } },
      secrets: {
        get: async (k: string) => secrets.get(k),
        store: async (k: string, v: string) => {
          secrets.set(k, v);
          changed.fire({ key: k });
        },
        delete: async (k: string) => {
          const had = secrets.delete(k);
          if (had) changed.fire({ key: k });
        },
        onDidChange: changed.event,
      },
    });
    return () => subscriptions.forEach((s) => s.dispose());
  }
}

/** Waits for a condition with a deadline (no fixed sleeps). */
export async function until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
