import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { appHostFilePath, NotConfiguredError, readAppHost, resolveConnection, sentryVibeHome } from '../src/core/discovery';

describe('apphost.json discovery', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  const appHost = { webUrl: 'http://localhost:5080/', brokerUrl: 'ws://localhost:5090', apiToken: 'apphost-token', previewDomain: 'preview.localhost:5090' };

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-home-'));
    env = { SENTRYVIBE_HOME: home, HOME: '/nonexistent-home' };
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  const write = (value: unknown) => fs.writeFileSync(path.join(home, 'apphost.json'), typeof value === 'string' ? value : JSON.stringify(value));

  it('Uses_SENTRYVIBE_HOME_else_dot_sentryvibe_in_the_home_folder', () => {
    assert.equal(appHostFilePath(env), path.join(home, 'apphost.json'));
    assert.equal(sentryVibeHome({ HOME: '/home/ada' }), path.join('/home/ada', '.sentryvibe'));
  });

  it('Works_with_zero_settings_from_the_AppHost_file', async () => {
    write(appHost);
    const c = await resolveConnection({}, env);
    assert.equal(c.webUrl, 'http://localhost:5080');
    assert.equal(c.apiToken, 'apphost-token');
    assert.equal(c.brokerUrl, 'ws://localhost:5090');
    assert.equal(c.previewDomain, 'preview.localhost:5090');
    assert.deepEqual(c.source, { webUrl: 'apphost', apiToken: 'apphost', brokerUrl: 'apphost' });
  });

  it('Prefers_the_signed_in_token_then_the_setting_then_the_file', async () => {
    write(appHost);
    const secret = async () => 'svp_secret';
    const signedIn = await resolveConnection({ signedInToken: secret, apiToken: 'from-settings' }, env);
    assert.equal(signedIn.apiToken, 'svp_secret');
    assert.equal(signedIn.source.apiToken, 'secret');
    const configured = await resolveConnection({ apiToken: 'from-settings', signedInToken: async () => undefined, runnerToken: 'rt', runnerBrokerUrl: 'wss://b' }, env);
    assert.equal(configured.apiToken, 'from-settings', 'the old setting still works when nobody signed in');
    assert.equal(configured.source.apiToken, 'settings');
    assert.equal(configured.runnerToken, 'rt');
    assert.equal(configured.brokerUrl, 'wss://b');
    const local = await resolveConnection({ signedInToken: async () => undefined }, env);
    assert.equal(local.apiToken, 'apphost-token');
  });

  it('Asks_for_the_signed_in_token_of_the_resolved_server_only', async () => {
    write(appHost);
    const asked: string[] = [];
    const lookup = async (url: string) => (asked.push(url), url === 'http://localhost:5080' ? 'svp_local' : undefined);
    assert.equal((await resolveConnection({ signedInToken: lookup }, env)).apiToken, 'svp_local');
    const remote = await resolveConnection({ webUrl: 'https://sentryvibe.example.com/', signedInToken: lookup }, env);
    assert.equal(remote.apiToken, undefined, 'the local sign-in is not sent to another server');
    assert.deepEqual(asked, ['http://localhost:5080', 'https://sentryvibe.example.com']);
  });

  it('Never_uses_the_API_token_as_the_runner_token', async () => {
    write(appHost);
    assert.equal((await resolveConnection({}, env)).runnerToken, undefined, 'the AppHost API token is not a runner token');
    assert.equal((await resolveConnection({ apiToken: 'api', signedInToken: async () => 'svp_secret' }, env)).runnerToken, undefined);
    assert.equal((await resolveConnection({ runnerToken: ' rt ' }, env)).runnerToken, 'rt');
  });

  it('Takes_the_preview_domain_from_settings_else_from_the_AppHost_file', async () => {
    write(appHost);
    assert.equal((await resolveConnection({ previewDomain: 'preview.example.com' }, env)).previewDomain, 'preview.example.com');
    assert.equal((await resolveConnection({ webUrl: 'https://sentryvibe.example.com' }, env)).previewDomain, undefined);
  });

  it('Never_sends_the_local_AppHost_token_to_another_configured_server', async () => {
    write(appHost);
    const c = await resolveConnection({ webUrl: 'https://sentryvibe.example.com' }, env);
    assert.equal(c.webUrl, 'https://sentryvibe.example.com');
    assert.equal(c.apiToken, undefined);
    assert.equal(c.brokerUrl, undefined);
    const same = await resolveConnection({ webUrl: 'http://localhost:5080' }, env);
    assert.equal(same.apiToken, 'apphost-token');
  });

  it('Explains_what_to_do_when_nothing_is_configured', async () => {
    await assert.rejects(resolveConnection({}, env), (e: unknown) => e instanceof NotConfiguredError && e.message.includes('apphost.json') && e.message.includes('AppHost'));
  });

  it('Reports_a_malformed_file_and_ignores_blank_fields', async () => {
    write('{ not json');
    await assert.rejects(readAppHost(path.join(home, 'apphost.json')), /not valid JSON/);
    write('\uFEFF{"webUrl":"http://x:1","apiToken":"  "}');
    assert.deepEqual(await readAppHost(path.join(home, 'apphost.json')), { webUrl: 'http://x:1', brokerUrl: undefined, apiToken: undefined, previewDomain: undefined });
  });
});
