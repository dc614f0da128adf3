// "SentryVibe: Sign In" and "Sign Out" through the real bundle (stand-in vscode) against a real local HTTP server:
// the questions asked, the account page opened, the token kept in secret storage and sent as bearer, who is shown as
// signed in, the words of a refusal or an unreachable server, and what Sign Out leaves behind.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runnerTokenSecretKey } from '../src/core/runnerToken';
import { personalTokenSecretKey } from '../src/core/signIn';
import { ExtensionBundle, fakeVscode, until } from '../test-support/standInVscode';

/** Tokens the stand-in Web knows: two personal tokens and an old-style API token (the owner's). */
const accounts: Record<string, { id: string; name: string; isOwner: boolean }> = {
  'svp_ada': { id: 'a1', name: 'Ada', isOwner: false },
  'svp_olive': { id: 'o1', name: 'Olive', isOwner: true },
  'local-api-token': { id: 'o1', name: 'Olive', isOwner: true },
};

async function standInWeb() {
  const seen: { url: string; auth?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url!, auth: req.headers.authorization });
    const json = (status: number, value: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
    const account = accounts[req.headers.authorization?.replace(/^Bearer /, '') ?? ''];
    if (!account) return json(401, { title: 'Unauthorized', status: 401, detail: "Send 'Authorization: Bearer <token>'." });
    if (req.url === '/api/account') return json(200, account);
    if (req.url === '/api/runners') return json(200, [{ id: `${account.name.toLowerCase()}-laptop`, name: `${account.name}'s laptop`, status: 'online' }]);
    if (req.url === '/api/projects') return json(200, []);
    return json(404, { title: 'Not Found', status: 404 });
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

describe('Sign In / Sign Out (stand-in vscode, real HTTP)', () => {
  const bundle = new ExtensionBundle();
  let web: Awaited<ReturnType<typeof standInWeb>>;
  before(async () => {
    await bundle.build();
    web = await standInWeb();
  });
  after(() => {
    web.close();
    bundle.dispose();
  });

  it('Asks_the_server_opens_the_account_page_keeps_the_token_in_secret_storage_and_shows_who_is_signed_in', async () => {
    web.seen.length = 0;
    const fake = fakeVscode({}, {
      inputs: [web.webUrl, 'svp_ada'],
      picks: [(items) => items.find((i) => i.label.includes('Open account page'))],
      onMessage: () => undefined,
    });
    const deactivate = bundle.activate(fake);
    try {
      assert.equal(await fake.commands.get('sentryvibe.signIn')!(), true, fake.messages.map((m) => m.text).join(' | '));
      assert.deepEqual(fake.opened, [`${web.webUrl}/account#tokens`]);
      assert.deepEqual(fake.inputBoxes.map((b) => b.password ?? false), [false, true], 'the token box hides what is typed');
      assert.deepEqual([...bundle.secrets], [[personalTokenSecretKey(web.webUrl), 'svp_ada']]);
      assert.deepEqual(fake.updates, [{ key: 'webUrl', value: web.webUrl }]);
      assert.ok(fake.messages.some((m) => m.level === 'info' && m.text === `Signed in to ${web.webUrl} as Ada.`), fake.messages.map((m) => m.text).join(' | '));

      await until(() => fake.statusBar.tooltip.startsWith('Signed in as Ada\n'), 'the status bar to name Ada');
      assert.match(fake.statusBar.tooltip, /Ada's laptop/);
      await fake.treeView.provider!.getChildren();
      await until(() => fake.treeView.description === 'Ada', 'the Projects view to name Ada');
      assert.ok(web.seen.length >= 3);
      assert.deepEqual([...new Set(web.seen.map((s) => s.auth))], ['Bearer svp_ada'], 'every request carries the signed-in token');
    } finally {
      deactivate();
    }
  });

  it('Explains_a_refused_token_keeps_nothing_and_takes_a_good_one_on_Try_Again', async () => {
    const errors: { text: string; actions: string[] }[] = [];
    const fake = fakeVscode({ webUrl: web.webUrl }, {
      inputs: ['svp_revoked', 'svp_olive'],
      picks: [(items) => items.find((i) => i.label.includes('Paste'))],
      onMessage: (text, actions) => {
        if (!actions.includes('Try Again')) return undefined;
        errors.push({ text, actions });
        return 'Try Again';
      },
    });
    const secrets = new Map<string, string>();
    const deactivate = bundle.activate(fake, secrets);
    try {
      assert.equal(await fake.commands.get('sentryvibe.signIn')!(), true);
    } finally {
      deactivate();
    }
    assert.deepEqual(errors, [{ text: `That token was refused by ${web.webUrl}. Make a new one on your account page.`, actions: ['Open Account Page', 'Try Again'] }]);
    assert.equal(fake.inputBoxes.length, 2, 'no server question when sentryvibe.webUrl is set; the token asked again');
    assert.deepEqual([...secrets], [[personalTokenSecretKey(web.webUrl), 'svp_olive']], 'only the accepted token is kept');
    assert.deepEqual(fake.updates, [], 'the configured server is left as it is');
    assert.ok(fake.messages.some((m) => m.text === `Signed in to ${web.webUrl} as Olive (owner).`));
  });

  it('Says_the_server_cannot_be_reached_and_keeps_nothing', async () => {
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const dead = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const fake = fakeVscode({ webUrl: dead }, { inputs: ['svp_ada'], picks: [(items) => items[0]], onMessage: () => undefined });
    const secrets = new Map<string, string>();
    const deactivate = bundle.activate(fake, secrets);
    try {
      assert.equal(await fake.commands.get('sentryvibe.signIn')!(), false);
    } finally {
      deactivate();
    }
    const error = fake.messages.find((m) => m.level === 'error');
    assert.ok(error, fake.messages.map((m) => m.text).join(' | '));
    assert.match(error.text, /^Cannot reach SentryVibe at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED.*Check the address and that the server is running\.$/);
    assert.deepEqual(error.actions, ['Try Again', 'Change Address']);
    assert.equal([...secrets.keys()].filter((k) => k.startsWith('sentryvibe.personalToken:')).length, 0);
  });

  it('Sign_Out_forgets_the_token_and_the_runner_token_and_the_old_setting_is_used_again', async () => {
    web.seen.length = 0;
    const fake = fakeVscode({ webUrl: web.webUrl, apiToken: 'local-api-token' }, { inputs: [], picks: [], onMessage: () => undefined });
    const other = personalTokenSecretKey('https://sentryvibe.example.com');
    const secrets = new Map<string, string>([
      [personalTokenSecretKey(web.webUrl), 'svp_ada'],
      [runnerTokenSecretKey(web.webUrl), JSON.stringify({ token: 'svr_1', source: 'created', tokenId: 't1' })],
      [other, 'svp_elsewhere'],
    ]);
    const deactivate = bundle.activate(fake, secrets);
    try {
      await until(() => fake.statusBar.tooltip.startsWith('Signed in as Ada\n'), 'the signed-in token to win over the setting');
      await fake.commands.get('sentryvibe.signOut')!();
      assert.deepEqual([...secrets.keys()], [other], "another server's sign-in stays");
      assert.ok(
        fake.messages.some((m) => m.text === `Signed out of ${web.webUrl}. The "sentryvibe.apiToken" setting still holds a token, which is used now: remove it there to sign out fully.`),
        fake.messages.map((m) => m.text).join(' | '),
      );
      await until(() => fake.statusBar.tooltip.startsWith('Signed in as Olive (owner)\n'), 'the old setting to take over');
      assert.equal(web.seen.at(-1)?.auth, 'Bearer local-api-token');
    } finally {
      deactivate();
    }
  });
});
