// Loads the real bundle with a stand-in `vscode` module and a stand-in Web: activation wires every command, the
// status bar follows the runners, and "New Project" goes from prompt to "ready" with the build's progress.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Module from 'node:module';
import * as esbuild from 'esbuild';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { contributes: { commands: { command: string }[] } };

class EventEmitter<T> {
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

interface QuickPickItem { label: string; description?: string }

/** What the user "does": answers to input boxes and quick picks, in order, and which message button to press. */
interface Script {
  inputs: string[];
  picks: ((items: QuickPickItem[]) => QuickPickItem | undefined)[];
  onMessage?: (text: string, actions: string[]) => string | undefined;
}

/** `workspace`: what a cloned repository's .vscode/settings.json would say; machine-scoped settings must ignore it. */
function fakeVscode(settings: Record<string, string>, script: Script, workspace: Record<string, string> = {}) {
  const commands = new Map<string, (...args: unknown[]) => unknown>();
  const statusBar = { text: '', tooltip: '', visible: false, command: '', name: '', backgroundColor: undefined as unknown, show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
  const messages: { level: string; text: string; actions: string[] }[] = [];
  const progress: string[] = [];
  const output: string[] = [];
  const pickTitles: string[] = [];
  const terminals: { shellPath?: string; shellArgs?: string[]; env?: Record<string, string>; message?: string; isTransient?: boolean }[] = [];
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
      setStatusBarMessage: () => disposable,
      showErrorMessage: message('error'),
      showWarningMessage: message('warning'),
      showInformationMessage: message('info'),
      showInputBox: async (o: { validateInput?: (v: string) => string | undefined }) => {
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
      onDidChangeConfiguration: () => disposable,
      getConfiguration: () => ({
        get: (key: string) => workspace[key] ?? settings[key] ?? '',
        inspect: (key: string) => ({ defaultValue: '', globalValue: settings[key], workspaceValue: workspace[key] }),
        update: async () => {},
      }),
      workspaceFolders: undefined,
    },
    env: { asExternalUri: async (u: unknown) => u, openExternal: async () => true },
  };
  return { api, commands, statusBar, messages, progress, output, pickTitles, terminals };
}

/** A stand-in Web whose project p1 builds and starts a preview as soon as it is created. */
async function standInWeb() {
  const created: unknown[] = [];
  const tokenRequests: unknown[] = [];
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-ws-'));
  const project = (ready: boolean) => ({
    id: 'p1', slug: 'todo-app', name: 'Todo App', prompt: 'Create a React todo app', status: ready ? 'ready' : 'pending', runnerId: 'local',
    path: workspace, todos: [], lastEventId: ready ? 7 : 1,
    devServer: ready ? { status: 'running', port: 5173, previewUrl: 'http://abc.preview.localhost:5090', lastLines: [] } : { status: 'stopped', lastLines: [] },
  });
  const events = [
    { type: 'user-message', prompt: 'Create a React todo app' },
    { type: 'build-started', prompt: 'Create a React todo app', templateId: 'vite-react', agent: 'none', turn: 1 },
    { type: 'todos-updated', todos: [{ content: 'Scaffold the app', status: 'in_progress', activeForm: 'Scaffolding the app' }, { content: 'Add the list', status: 'pending' }] },
    { type: 'tool-use', toolUseId: 't1', name: 'Write', inputSummary: 'src/App.tsx', status: 'running' },
    { type: 'build-completed', turns: 1, durationMs: 1200, costUsd: 0 },
    { type: 'dev-server-starting', command: 'npm run dev', phase: 'installing' },
    { type: 'port-detected', port: 5173, previewUrl: 'http://abc.preview.localhost:5090', provider: 'relay' },
  ];
  const server = http.createServer((req, res) => {
    assert.equal(req.headers.authorization, 'Bearer tok');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const json = (status: number, value: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
      if (req.url === '/api/runners/tokens' && req.method === 'POST') {
        const b = JSON.parse(body) as { name: string; runnerId?: string };
        tokenRequests.push(b);
        return json(201, { id: 't1', name: b.name, token: 'svr_runner_token_1', prefix: 'svr_runn', createdAt: new Date().toISOString(), runnerId: b.runnerId });
      }
      if (req.url === '/api/runners/tokens') return json(200, tokenRequests.length ? [{ id: 't1', name: 'x', prefix: 'svr_runn', revokedAt: null }] : []);
      if (req.url === '/api/runners') return json(200, [{ id: 'local', name: 'laptop', status: 'online', lastSeenAt: null, version: '0.1.0' }]);
      if (req.url === '/api/templates') return json(200, [{ id: 'vite-react', name: 'React + Vite', description: 'SPA', framework: 'vite' }]);
      if (req.url === '/api/projects' && req.method === 'POST') {
        created.push(JSON.parse(body));
        return json(201, project(false));
      }
      if (req.url === '/api/projects') return json(200, created.length ? [project(true)] : []);
      if (req.url === '/api/projects/p1') return json(200, project(true));
      if (req.url?.startsWith('/api/projects/p1/events')) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        events.forEach((e, i) => res.write(`id: ${i + 1}\nevent: ${e.type}\ndata: ${JSON.stringify({ id: i + 1, type: e.type, projectId: 'p1', timestamp: new Date().toISOString(), data: e })}\n\n`));
        return undefined;
      }
      return json(404, { title: 'Not Found', status: 404 });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    webUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    created,
    tokenRequests,
    close: () => {
      server.closeAllConnections();
      server.close();
      fs.rmSync(workspace, { recursive: true, force: true });
    },
  };
}

describe('extension activation (stand-in vscode)', () => {
  let outDir: string;
  let savedHome: string | undefined;
  const moduleInternals = Module as unknown as { _resolveFilename: (r: string, ...rest: unknown[]) => string; _cache: Record<string, unknown> };
  const originalResolve = moduleInternals._resolveFilename;
  let currentApi: unknown;
  /** The stand-in SecretStorage of the current activation. */
  let secrets = new Map<string, string>();

  before(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-ext-'));
    // Hermetic: whatever AppHost runs on this machine, its apphost.json is not read.
    savedHome = process.env.SENTRYVIBE_HOME;
    process.env.SENTRYVIBE_HOME = outDir;
    await esbuild.build({ entryPoints: [path.join(root, 'src', 'extension.ts')], bundle: true, platform: 'node', format: 'cjs', external: ['vscode'], outfile: path.join(outDir, 'extension.js'), logLevel: 'silent' });
    // `require('vscode')` in the bundle resolves to whichever stand-in the running test installed.
    const fakePath = path.join(outDir, 'vscode-stand-in.js');
    fs.writeFileSync(fakePath, 'module.exports = globalThis.__vscodeStandIn;');
    moduleInternals._resolveFilename = (request: string, ...rest: unknown[]) => (request === 'vscode' ? fakePath : originalResolve(request, ...rest));
  });

  after(() => {
    moduleInternals._resolveFilename = originalResolve;
    if (savedHome === undefined) delete process.env.SENTRYVIBE_HOME;
    else process.env.SENTRYVIBE_HOME = savedHome;
    fs.rmSync(outDir, { recursive: true, force: true });
  });

  function activate(fake: ReturnType<typeof fakeVscode>) {
    secrets = new Map();
    currentApi = fake.api;
    (globalThis as { __vscodeStandIn?: unknown }).__vscodeStandIn = currentApi;
    const bundle = path.join(outDir, 'extension.js');
    for (const key of Object.keys(moduleInternals._cache)) if (key.startsWith(outDir)) delete moduleInternals._cache[key];
    const extension = require(bundle) as { activate(c: unknown): void };
    const subscriptions: { dispose(): void }[] = [];
    extension.activate({
      subscriptions,
      extensionUri: { fsPath: root },
      extension: { packageJSON: { version: '0.1.0' } },
      secrets: {
        get: async (k: string) => secrets.get(k),
        store: async (k: string, v: string) => void secrets.set(k, v),
        delete: async (k: string) => void secrets.delete(k),
        onDidChange: new EventEmitter<{ key: string }>().event,
      },
    });
    return () => subscriptions.forEach((s) => s.dispose());
  }

  async function until(condition: () => boolean, what: string, ms = 5_000) {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('Registers_every_contributed_command_and_shows_the_runner_status', async () => {
    const web = await standInWeb();
    const fake = fakeVscode({ webUrl: web.webUrl, apiToken: 'tok' }, { inputs: [], picks: [] });
    const deactivate = activate(fake);
    try {
      assert.deepEqual([...fake.commands.keys()].sort(), pkg.contributes.commands.map((c) => c.command).sort());
      await until(() => fake.statusBar.tooltip.includes('laptop'), 'the status bar to show the runner');
      assert.match(fake.statusBar.text, /vm-running/);
      assert.equal(fake.statusBar.visible, true);
    } finally {
      deactivate();
      web.close();
    }
    assert.equal(fake.commands.size, 0, 'disposing the subscriptions unregisters every command');
  });

  it('New_Project_creates_the_project_follows_its_build_and_offers_the_preview_and_folder', async () => {
    const web = await standInWeb();
    const fake = fakeVscode(
      { webUrl: web.webUrl, apiToken: 'tok' },
      {
        inputs: ['Create a React todo app'],
        picks: [(items) => items[0], (items) => items.find((i) => i.label === 'none')],
        onMessage: () => undefined,
      },
    );
    const deactivate = activate(fake);
    try {
      await fake.commands.get('sentryvibe.newProject')!();
      await until(() => fake.messages.some((m) => m.level === 'info' && m.text.includes('is ready')), 'the ready message');
    } finally {
      deactivate();
      web.close();
    }
    assert.deepEqual(web.created, [{ prompt: 'Create a React todo app', agent: 'none' }], '"auto" sends no templateId');
    assert.deepEqual(fake.pickTitles.slice(0, 2), ['SentryVibe: New Project (2/3): template', 'SentryVibe: New Project (3/3): agent']);
    assert.ok(fake.progress.includes('Scaffolding the app (0/2)'), fake.progress.join(' | '));
    assert.ok(fake.progress.includes('Write src/App.tsx'), fake.progress.join(' | '));
    assert.ok(fake.progress.includes('Preview at http://abc.preview.localhost:5090'), fake.progress.join(' | '));
    const ready = fake.messages.find((m) => m.text.includes('is ready'))!;
    assert.equal(ready.text, 'Todo App is ready: http://abc.preview.localhost:5090');
    assert.deepEqual(ready.actions, ['Open Preview', 'Open Folder', 'Follow-up Prompt']);
    assert.ok(fake.output.some((l) => l === '[todo-app] ✔ Build completed in 1 turn, 1.2 s, $0.0000'), fake.output.join('\n'));
  });
  it('Start_Runner_makes_a_runner_token_and_hands_it_to_the_runner_in_its_environment_ignoring_workspace_settings', async () => {
    const web = await standInWeb();
    const fake = fakeVscode(
      { webUrl: web.webUrl, apiToken: 'tok', 'runner.brokerUrl': 'ws://127.0.0.1:1', 'runner.command': `"${process.execPath}" runner.js` },
      { inputs: [], picks: [], onMessage: () => undefined },
      // A cloned repository tries to redirect the extension and choose what Start Runner runs.
      { webUrl: 'http://attacker.invalid', 'runner.command': '/tmp/evil.sh', 'runner.brokerUrl': 'ws://attacker.invalid', 'runner.token': 'planted' },
    );
    const deactivate = activate(fake);
    try {
      assert.equal(await fake.commands.get('sentryvibe.startRunner')!(), true, fake.messages.map((m) => m.text).join(' | '));
    } finally {
      deactivate();
      web.close();
    }
    assert.equal(web.tokenRequests.length, 1, 'one runner token made through the API');
    const request = web.tokenRequests[0] as { name: string; runnerId: string };
    assert.match(request.name, /^vscode-/);
    assert.equal(request.runnerId, request.name);
    assert.equal(fake.terminals.length, 1);
    const t = fake.terminals[0]!;
    assert.equal(t.shellPath, process.execPath, 'the user\'s runner command, not the workspace\'s');
    assert.deepEqual(t.shellArgs, ['runner.js', 'run', '--broker', 'ws://127.0.0.1:1']);
    assert.equal(t.env?.Runner__Token, 'svr_runner_token_1');
    assert.equal(t.env?.Runner__Id, request.runnerId);
    assert.ok(!JSON.stringify(t.shellArgs).includes('tok') && !JSON.stringify(t.shellArgs).includes('svr_'), 'no token in the arguments');
    assert.ok(!t.message?.includes('svr_runner_token_1'), t.message);
    assert.equal(t.isTransient, true);
    assert.ok([...secrets.values()].some((v) => v.includes('svr_runner_token_1')), 'kept in secret storage');
  });
});
