// Loads the real bundle with a stand-in `vscode` module and activates it: the wiring runs, every contributed
// command gets registered, the status bar follows a (stand-in) Web, and deactivation disposes everything.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
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

function fakeVscode(settings: Record<string, string>) {
  const commands = new Map<string, (...args: unknown[]) => unknown>();
  const statusBar = { text: '', tooltip: '', visible: false, command: '', name: '', backgroundColor: undefined as unknown, show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
  const disposable = { dispose() {} };
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
      createOutputChannel: () => ({ appendLine() {}, show() {}, dispose() {} }),
      createStatusBarItem: () => statusBar,
      onDidCloseTerminal: () => disposable,
      registerTreeDataProvider: () => disposable,
      showErrorMessage: async () => undefined,
      showWarningMessage: async () => undefined,
      showInformationMessage: async () => undefined,
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
      getConfiguration: () => ({ get: (key: string) => settings[key] ?? '', update: async () => {} }),
      workspaceFolders: undefined,
    },
    env: { asExternalUri: async (u: unknown) => u, openExternal: async () => true },
  };
  return { api, commands, statusBar };
}

describe('extension activation (stand-in vscode)', () => {
  it('Registers_every_contributed_command_and_shows_the_runner_status', async () => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-ext-'));
    const runners = [{ id: 'local', name: 'laptop', status: 'online', lastSeenAt: null, version: '0.1.0' }];
    const server = http.createServer((req, res) => {
      assert.equal(req.headers.authorization, 'Bearer tok');
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(req.url === '/api/runners' ? JSON.stringify(runners) : '[]');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const webUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { api, commands, statusBar } = fakeVscode({ webUrl, apiToken: 'tok' });

    const resolve = (Module as unknown as { _resolveFilename: (r: string, ...rest: unknown[]) => string })._resolveFilename;
    const cache = (Module as unknown as { _cache: Record<string, unknown> })._cache;
    const fakePath = path.join(outDir, 'vscode-stand-in.js');
    (Module as unknown as { _resolveFilename: unknown })._resolveFilename = (request: string, ...rest: unknown[]) =>
      request === 'vscode' ? fakePath : resolve(request, ...rest);
    cache[fakePath] = { id: fakePath, filename: fakePath, loaded: true, exports: api };
    const subscriptions: { dispose(): void }[] = [];
    // Hermetic: whatever AppHost runs on this machine, its apphost.json is not read.
    const savedHome = process.env.SENTRYVIBE_HOME;
    process.env.SENTRYVIBE_HOME = outDir;
    try {
      await esbuild.build({ entryPoints: [path.join(root, 'src', 'extension.ts')], bundle: true, platform: 'node', format: 'cjs', external: ['vscode'], outfile: path.join(outDir, 'extension.js'), logLevel: 'silent' });
      const extension = require(path.join(outDir, 'extension.js')) as { activate(c: unknown): void; deactivate(): void };
      const secretsChanged = new EventEmitter<{ key: string }>();
      extension.activate({
        subscriptions,
        extensionUri: { fsPath: root },
        extension: { packageJSON: { version: '0.1.0' } },
        secrets: { get: async () => undefined, store: async () => {}, delete: async () => {}, onDidChange: secretsChanged.event },
      });

      assert.deepEqual([...commands.keys()].sort(), pkg.contributes.commands.map((c) => c.command).sort());
      const deadline = Date.now() + 5_000;
      while (!statusBar.text.includes('laptop') && !statusBar.tooltip.includes('laptop') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(statusBar.text, /vm-running/);
      assert.match(statusBar.tooltip, /laptop/);
      assert.equal(statusBar.visible, true);
    } finally {
      if (savedHome === undefined) delete process.env.SENTRYVIBE_HOME;
      else process.env.SENTRYVIBE_HOME = savedHome;
      for (const s of subscriptions) s.dispose();
      (Module as unknown as { _resolveFilename: unknown })._resolveFilename = resolve;
      delete cache[fakePath];
      server.closeAllConnections();
      server.close();
      fs.rmSync(outDir, { recursive: true, force: true });
    }
    assert.equal(commands.size, 0, 'disposing the subscriptions unregisters every command');
  });
});
