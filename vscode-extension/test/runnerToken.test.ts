// Start Runner's token: made through the API (never the API token), kept in secret storage, reused while the server
// still has it, replaced when revoked, and a clear message when the API refuses. A stand-in Web over real HTTP.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SentryVibeClient } from '../src/core/client';
import {
  obtainRunnerToken,
  forgetRunnerToken,
  runnerIdFromName,
  runnerTokenName,
  runnerTokenSecretKey,
  RunnerTokenError,
  type SecretStore,
} from '../src/core/runnerToken';

class MemorySecrets implements SecretStore {
  readonly values = new Map<string, string>();
  async get(key: string) {
    return this.values.get(key);
  }
  async store(key: string, value: string) {
    this.values.set(key, value);
  }
  async delete(key: string) {
    this.values.delete(key);
  }
}

interface Row { id: string; name: string; token: string; runnerId?: string; revokedAt?: string }

describe('runner token for Start Runner', () => {
  let server: http.Server;
  let webUrl: string;
  let rows: Row[];
  let requests: { method: string; url: string; auth?: string; body?: unknown }[];
  let refuse: number | undefined;
  let bindsIds: boolean;
  let takenIds: Set<string>;

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const json = (status: number, value: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
        requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body: body ? JSON.parse(body) : undefined });
        if (req.headers.authorization !== 'Bearer api-token') return json(401, { title: 'Unauthorized', status: 401 });
        if (req.url === '/api/runners/tokens' && req.method === 'POST') {
          if (refuse) return res.writeHead(refuse, { 'Content-Type': 'application/problem+json' }).end(JSON.stringify({ title: 'Forbidden', status: refuse }));
          const b = JSON.parse(body) as { name: string; runnerId?: string };
          // Like RunnerDirectory: a runner id another user has is refused as a field error; without one the server picks a free id.
          if (b.runnerId && takenIds.has(b.runnerId)) {
            return res.writeHead(400, { 'Content-Type': 'application/problem+json' })
              .end(JSON.stringify({ title: 'The request is not valid.', status: 400, errors: { runnerId: ['That runner id is taken; choose another.'] } }));
          }
          if (!b.runnerId && bindsIds) b.runnerId = `${runnerIdFromName(b.name)}-2`;
          const row: Row = { id: `id-${rows.length + 1}`, name: b.name, token: `svr_made_${rows.length + 1}`, runnerId: bindsIds ? b.runnerId : undefined };
          rows.push(row);
          // Like RunnersApi.CreateToken: 201 with the token once; runnerId only from a server that binds tokens.
          return json(201, { id: row.id, name: row.name, token: row.token, prefix: row.token.slice(0, 8), createdAt: new Date().toISOString(), ...(row.runnerId ? { runnerId: row.runnerId } : {}) });
        }
        if (req.url === '/api/runners/tokens' && req.method === 'GET') {
          return json(200, rows.map((r) => ({ id: r.id, name: r.name, prefix: r.token.slice(0, 8), createdAt: new Date().toISOString(), revokedAt: r.revokedAt ?? null })));
        }
        return json(404, { title: 'Not Found', status: 404 });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    webUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    rows = [];
    requests = [];
    refuse = undefined;
    bindsIds = true;
    takenIds = new Set();
  });

  const api = (token = 'api-token') => new SentryVibeClient({ webUrl, apiToken: token });

  it('Makes_a_runner_token_bound_to_a_runner_id_and_keeps_it_in_secret_storage_not_the_API_token', async () => {
    const secrets = new MemorySecrets();
    const c = await obtainRunnerToken({ webUrl, api: api(), secrets, hostname: 'Ada Laptop.local' });
    assert.equal(c.token, 'svr_made_1');
    assert.notEqual(c.token, 'api-token');
    assert.equal(c.runnerId, 'vscode-ada-laptop.local');
    assert.equal(c.source, 'created');
    const post = requests.find((r) => r.method === 'POST')!;
    assert.deepEqual(post.body, { name: 'vscode-ada-laptop.local', runnerId: 'vscode-ada-laptop.local' });
    assert.equal(post.auth, 'Bearer api-token', 'made with the API token');
    const stored = JSON.parse(secrets.values.get(runnerTokenSecretKey(webUrl))!);
    assert.equal(stored.token, 'svr_made_1');
    assert.equal(stored.runnerId, 'vscode-ada-laptop.local');

    // The next start reuses it (the server still lists it) instead of making another.
    const again = await obtainRunnerToken({ webUrl, api: api(), secrets, hostname: 'Ada Laptop.local' });
    assert.deepEqual(again, { token: 'svr_made_1', runnerId: 'vscode-ada-laptop.local', source: 'stored' });
    assert.equal(rows.length, 1);
  });

  it('Passes_no_runner_id_when_the_server_does_not_bind_one', async () => {
    bindsIds = false;
    const c = await obtainRunnerToken({ webUrl, api: api(), secrets: new MemorySecrets(), hostname: 'box' });
    assert.equal(c.token, 'svr_made_1');
    assert.equal(c.runnerId, undefined, 'the runner keeps its own default id');
  });

  it('Makes_a_new_token_when_the_stored_one_was_revoked_or_the_server_forgot_it', async () => {
    const secrets = new MemorySecrets();
    await obtainRunnerToken({ webUrl, api: api(), secrets, hostname: 'box' });
    rows[0]!.revokedAt = new Date().toISOString();
    const c = await obtainRunnerToken({ webUrl, api: api(), secrets, hostname: 'box' });
    assert.equal(c.token, 'svr_made_2');
    assert.match(c.note ?? '', /revoked; made a new one/);
    rows = [];
    const fresh = await obtainRunnerToken({ webUrl, api: api(), secrets, hostname: 'box' });
    assert.equal(fresh.token, 'svr_made_1');
    assert.match(fresh.note ?? '', /not found on this server/);
  });

  it('Explains_what_to_do_when_the_API_refuses_to_make_a_token', async () => {
    refuse = 403;
    const secrets = new MemorySecrets();
    await assert.rejects(
      obtainRunnerToken({ webUrl, api: api(), secrets, hostname: 'box' }),
      (e: unknown) => e instanceof RunnerTokenError && e.fix === 'settings' && /HTTP 403/.test(e.message) && /sentryvibe\.runner\.token/.test(e.message) && /web UI/.test(e.message),
    );
    await assert.rejects(obtainRunnerToken({ webUrl, api: api('wrong'), secrets, hostname: 'box' }), /HTTP 401/);
    assert.equal(secrets.values.size, 0, 'nothing stored');
  });

  it('Moves_a_token_from_the_setting_into_secret_storage_and_reads_secret_storage_first', async () => {
    const secrets = new MemorySecrets();
    const c = await obtainRunnerToken({ webUrl, api: api(), secrets, settingToken: ' svr_from_ui ' });
    assert.deepEqual(c, { token: 'svr_from_ui', source: 'settings' });
    assert.equal(JSON.parse(secrets.values.get(runnerTokenSecretKey(webUrl))!).token, 'svr_from_ui');
    // The setting removed: secret storage still has it; no API call made a token.
    const later = await obtainRunnerToken({ webUrl, api: api(), secrets });
    assert.equal(later.token, 'svr_from_ui');
    assert.equal(rows.length, 0);
    // A new value in the setting overrides.
    assert.equal((await obtainRunnerToken({ webUrl, api: api(), secrets, settingToken: 'svr_newer' })).token, 'svr_newer');
    await forgetRunnerToken(secrets, webUrl);
    assert.equal(secrets.values.size, 0);
  });

  it('Keeps_one_token_per_server_and_names_it_after_the_host', () => {
    assert.notEqual(runnerTokenSecretKey('http://localhost:5080/'), runnerTokenSecretKey('https://sentryvibe.example.com'));
    assert.equal(runnerTokenSecretKey('http://localhost:5080/'), runnerTokenSecretKey('http://localhost:5080'));
    assert.equal(runnerTokenName('WORK-PC'), 'vscode-work-pc');
    assert.equal(runnerTokenName(''), 'vscode-local');
    assert.equal(runnerIdFromName('vscode-Ä b'), 'vscode---b');
  });
  it('Lets_the_server_pick_a_free_runner_id_when_another_user_has_this_machines_name', async () => {
    const secrets = new MemorySecrets();
    const name = runnerTokenName('laptop');
    takenIds.add(runnerIdFromName(name));
    const made = await obtainRunnerToken({ api: api(), secrets, webUrl, hostname: 'laptop' });
    assert.equal(made.source, 'created');
    assert.equal(made.runnerId, `${runnerIdFromName(name)}-2`);
    const posts = requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((r) => (r.body as { runnerId?: string }).runnerId), [runnerIdFromName(name), undefined]);
  });
});
