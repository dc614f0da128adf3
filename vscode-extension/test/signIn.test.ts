// Sign In / Sign Out without VS Code, against real local HTTP servers: a token the server accepts (200), one it
// refuses (401), a server that is not there (connection refused), and a server from before accounts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SentryVibeClient } from '../src/core/client';
import { resolveConnection } from '../src/core/discovery';
import { runnerTokenSecretKey, type SecretStore } from '../src/core/runnerToken';
import {
  LEGACY_TOKEN_KEY,
  accountPageUrl,
  checkToken,
  personalTokenSecretKey,
  signIn,
  signOut,
  storedToken,
  validateServerUrl,
} from '../src/core/signIn';

const accounts: Record<string, { id: string; name: string; isOwner: boolean }> = {
  'svp_ada': { id: '3f1c0a52-7d1e-4c1b-9a57-1f0e8f2a9b11', name: 'Ada', isOwner: false },
  'svp_owner': { id: '0b7d2c4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f', name: 'Olive', isOwner: true },
};

interface Seen {
  method: string;
  url: string;
  auth?: string;
}

/** A stand-in Web: /api/account and /api/projects answer a known personal token, everything else is a 401 problem. */
async function startWeb(options: { beforeAccounts?: boolean } = {}) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization });
    const json = (status: number, value: unknown, type = 'application/json') => res.writeHead(status, { 'Content-Type': type }).end(JSON.stringify(value));
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    const account = token ? accounts[token] : undefined;
    if (!account) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return json(401, { title: 'Unauthorized', status: 401, detail: "Send 'Authorization: Bearer <token>'." }, 'application/problem+json');
    }
    if (req.url === '/api/account') {
      return options.beforeAccounts ? json(404, { title: 'Not Found', status: 404 }, 'application/problem+json') : json(200, account);
    }
    if (req.url === '/api/projects' || req.url === '/api/runners') return json(200, []);
    return json(404, { title: 'Not Found', status: 404 }, 'application/problem+json');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    webUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** An address where nothing listens: a port that was just free. */
async function deadAddress(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function memorySecrets(initial: Record<string, string> = {}): SecretStore & { map: Map<string, string> } {
  const map = new Map(Object.entries(initial));
  return {
    map,
    get: async (k) => map.get(k),
    store: async (k, v) => void map.set(k, v),
    delete: async (k) => void map.delete(k),
  };
}

describe('Sign In with a personal token', () => {
  let web: Awaited<ReturnType<typeof startWeb>>;
  let home: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    web = await startWeb();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-signin-'));
    env = { SENTRYVIBE_HOME: home, HOME: '/nonexistent-home' };
  });
  after(() => {
    web.close();
    fs.rmSync(home, { recursive: true, force: true });
  });
  beforeEach(() => {
    web.seen.length = 0;
  });

  it('Checks_the_token_with_GET_api_account_as_a_bearer_token_and_keeps_it_for_that_server', async () => {
    const secrets = memorySecrets();
    const result = await signIn({ webUrl: `${web.webUrl}/`, token: '  svp_ada ', secrets });
    assert.deepEqual(result, { ok: true, account: accounts.svp_ada });
    assert.deepEqual(web.seen, [{ method: 'GET', url: '/api/account', auth: 'Bearer svp_ada' }]);
    assert.deepEqual([...secrets.map], [[personalTokenSecretKey(web.webUrl), 'svp_ada']]);
    assert.equal(await storedToken(secrets, web.webUrl), 'svp_ada');
    assert.equal(await storedToken(secrets, 'https://sentryvibe.example.com'), undefined, 'kept for this server only');
  });

  it('Says_in_words_that_a_wrong_token_was_refused_and_keeps_the_previous_sign_in', async () => {
    const secrets = memorySecrets({ [personalTokenSecretKey(web.webUrl)]: 'svp_ada' });
    const result = await signIn({ webUrl: web.webUrl, token: 'svp_revoked', secrets });
    assert.deepEqual(result, {
      ok: false,
      reason: 'refused',
      message: `That token was refused by ${web.webUrl}. Make a new one on your account page.`,
    });
    assert.equal(web.seen[0]?.auth, 'Bearer svp_revoked');
    assert.deepEqual([...secrets.map], [[personalTokenSecretKey(web.webUrl), 'svp_ada']], 'the refused token is not kept');
  });

  it('Says_the_server_cannot_be_reached_when_nothing_answers_and_keeps_nothing', async () => {
    const dead = await deadAddress();
    const secrets = memorySecrets();
    const result = await signIn({ webUrl: dead, token: 'svp_ada', secrets });
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.reason === 'unreachable', JSON.stringify(result));
    assert.match(result.message, new RegExp(`^Cannot reach SentryVibe at ${dead.replace(/\./g, '\\.')}: ECONNREFUSED`));
    assert.match(result.message, /Check the address and that the server is running\.$/);
    assert.equal(secrets.map.size, 0);
  });

  it('Sends_the_signed_in_token_as_bearer_on_every_request_ahead_of_the_old_setting', async () => {
    const secrets = memorySecrets();
    assert.equal((await signIn({ webUrl: web.webUrl, token: 'svp_owner', secrets })).ok, true);
    const c = await resolveConnection({ webUrl: web.webUrl, apiToken: 'old-setting-token', signedInToken: (url) => storedToken(secrets, url) }, env);
    assert.equal(c.source.apiToken, 'secret');
    const client = new SentryVibeClient({ webUrl: c.webUrl, apiToken: c.apiToken });
    await client.listProjects();
    await client.listRunners();
    assert.deepEqual(
      web.seen.map((s) => `${s.url} ${s.auth}`),
      ['/api/account Bearer svp_owner', '/api/projects Bearer svp_owner', '/api/runners Bearer svp_owner'],
    );
  });

  it('Signs_out_by_forgetting_that_servers_token_and_runner_token_and_nothing_of_another_server', async () => {
    const other = 'https://sentryvibe.example.com';
    const secrets = memorySecrets({
      [personalTokenSecretKey(web.webUrl)]: 'svp_ada',
      [runnerTokenSecretKey(web.webUrl)]: JSON.stringify({ token: 'svr_1', source: 'created', tokenId: 't1' }),
      [personalTokenSecretKey(other)]: 'svp_elsewhere',
      [runnerTokenSecretKey(other)]: JSON.stringify({ token: 'svr_2', source: 'created', tokenId: 't2' }),
    });
    await signOut(secrets, `${web.webUrl}/`);
    assert.deepEqual([...secrets.map.keys()].sort(), [personalTokenSecretKey(other), runnerTokenSecretKey(other)].sort());
    // Signed out, the old setting (local use) is what is sent again.
    const c = await resolveConnection({ webUrl: web.webUrl, apiToken: 'old-setting-token', signedInToken: (url) => storedToken(secrets, url) }, env);
    assert.equal(c.apiToken, 'old-setting-token');
    assert.equal(c.source.apiToken, 'settings');
  });

  it('Moves_a_token_an_earlier_version_kept_under_the_server_it_is_first_used_with', async () => {
    const secrets = memorySecrets({ [LEGACY_TOKEN_KEY]: 'svp_ada' });
    assert.equal(await storedToken(secrets, web.webUrl), 'svp_ada');
    assert.deepEqual([...secrets.map], [[personalTokenSecretKey(web.webUrl), 'svp_ada']]);
    assert.equal(await storedToken(secrets, 'https://sentryvibe.example.com'), undefined, 'and then only there');
    const legacy = memorySecrets({ [LEGACY_TOKEN_KEY]: 'x' });
    await signOut(legacy, web.webUrl);
    assert.equal(legacy.map.size, 0, 'Sign Out forgets an earlier version\'s token too');
  });

  it('Accepts_a_token_on_a_server_from_before_accounts_without_naming_anyone', async () => {
    const old = await startWeb({ beforeAccounts: true });
    try {
      assert.deepEqual(await checkToken(old.webUrl, 'svp_ada'), { ok: true });
      assert.deepEqual(old.seen.map((s) => s.url), ['/api/account', '/api/runners']);
      const refused = await checkToken(old.webUrl, 'wrong');
      assert.equal(refused.ok, false);
      assert.ok(!refused.ok && refused.reason === 'refused');
    } finally {
      old.close();
    }
  });

  it('Opens_the_tokens_part_of_the_account_page_and_takes_only_http_addresses', () => {
    assert.equal(accountPageUrl('https://sentryvibe.example.com/'), 'https://sentryvibe.example.com/account#tokens');
    assert.equal(accountPageUrl('http://localhost:5080'), 'http://localhost:5080/account#tokens');
    assert.equal(validateServerUrl(' https://sentryvibe.example.com '), undefined);
    assert.equal(validateServerUrl('http://localhost:5080'), undefined);
    for (const bad of ['', 'sentryvibe.example.com', 'ftp://x', 'javascript:alert(1)', 'https://user:pw@x.example.com']) {
      assert.ok(validateServerUrl(bad), bad);
    }
  });
});
