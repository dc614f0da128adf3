// The client against a small stand-in server: headers, bodies and problem+json handling.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApiError, SentryVibeClient, UnreachableError } from '../src/core/client';
import type { ProjectEvent } from '../src/core/events';

describe('SentryVibeClient (stand-in server)', () => {
  let server: http.Server;
  let base: string;
  const seen: { method: string; url: string; auth?: string; body: string }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
        if (req.headers.authorization !== 'Bearer good') {
          res.writeHead(401).end();
        } else if (req.method === 'POST' && req.url === '/api/projects') {
          const json = JSON.parse(body) as { prompt: string };
          if (!json.prompt) {
            res.writeHead(400, { 'Content-Type': 'application/problem+json' });
            res.end(JSON.stringify({ title: 'One or more validation errors occurred.', status: 400, errors: { prompt: ['The prompt is required.'] } }));
          } else {
            res.writeHead(201, { 'Content-Type': 'application/json', Location: '/api/projects/p1' });
            res.end(JSON.stringify({ id: 'p1', slug: 'todo-app', status: 'pending' }));
          }
        } else if (req.url === '/api/projects/p1/messages') {
          res.writeHead(202).end();
        } else if (req.url === '/api/projects/missing') {
          res.writeHead(404, { 'Content-Type': 'application/problem+json' });
          res.end(JSON.stringify({ title: 'Not Found', status: 404, detail: 'No project missing.' }));
        } else if (req.url?.startsWith('/api/projects/p1/events')) {
          res.writeHead(200, { 'Content-Type': 'text/event-stream' });
          res.write('id: 1\nevent: build-started\ndata: {"type":"build-started","turn":1}\n\n');
          res.write('id: 2\ndata: {"type":"todos-updated","todos":[{"content":"A","status":"pending"}]}\n\n');
        } else {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end('[]');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('Sends_the_bearer_token_and_drops_an_auto_template', async () => {
    const client = new SentryVibeClient({ webUrl: base, apiToken: 'good' });
    const p = await client.createProject({ prompt: 'Create a React todo app', templateId: 'auto', agent: 'none' });
    assert.equal(p.id, 'p1');
    const call = seen.at(-1)!;
    assert.equal(call.auth, 'Bearer good');
    assert.deepEqual(JSON.parse(call.body), { prompt: 'Create a React todo app', agent: 'none' });
    await client.createProject({ prompt: 'Blog', templateId: 'vite-react', templateUrl: ' https://github.com/you/starter.git ' });
    assert.deepEqual(JSON.parse(seen.at(-1)!.body), { prompt: 'Blog', templateUrl: 'https://github.com/you/starter.git' });
    await client.sendMessage('p1', 'Add dark mode');
    assert.deepEqual(JSON.parse(seen.at(-1)!.body), { prompt: 'Add dark mode' });
  });

  it('Turns_problem_json_into_a_readable_error', async () => {
    const client = new SentryVibeClient({ webUrl: base, apiToken: 'good' });
    await assert.rejects(client.createProject({ prompt: '' }), (e: unknown) => e instanceof ApiError && e.status === 400 && e.message === 'prompt: The prompt is required.' && e.problem?.errors?.prompt?.length === 1);
    await assert.rejects(client.getProject('missing'), (e: unknown) => e instanceof ApiError && e.message === 'No project missing.');
    const anonymous = new SentryVibeClient({ webUrl: base });
    await assert.rejects(anonymous.listProjects(), (e: unknown) => e instanceof ApiError && /Sign In/.test(e.message));
  });

  it('Follows_the_event_stream_into_typed_events', async () => {
    const client = new SentryVibeClient({ webUrl: base, apiToken: 'good' });
    const controller = new AbortController();
    const events: ProjectEvent[] = [];
    await client.followEvents('p1', {
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (events.length === 2) controller.abort();
      },
    });
    assert.deepEqual(events.map((e) => [e.type, e.seq]), [['build-started', 1], ['todos-updated', 2]]);
  });

  it('Says_the_server_is_unreachable_when_nothing_listens', async () => {
    const client = new SentryVibeClient({ webUrl: 'http://127.0.0.1:9', apiToken: 'x', timeoutMs: 2_000 });
    await assert.rejects(client.listTemplates(), UnreachableError);
  });
});
