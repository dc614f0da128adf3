// Loads the real bundle with a stand-in `vscode` module and a stand-in Web: activation wires every command, the
// status bar follows the runners, and "New Project" goes from prompt to "ready" with the build's progress.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExtensionBundle, type FakeVscode, fakeVscode, root, until } from '../test-support/standInVscode';

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { contributes: { commands: { command: string }[] } };

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
  const bundle = new ExtensionBundle();
  before(() => bundle.build());
  after(() => bundle.dispose());
  const activate = (fake: FakeVscode) => bundle.activate(fake);

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
    assert.ok([...bundle.secrets.values()].some((v) => v.includes('svr_runner_token_1')), 'kept in secret storage');
  });
});
