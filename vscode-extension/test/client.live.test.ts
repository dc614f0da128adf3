// The client against a real SentryVibe Web: set SENTRYVIBE_WEB_URL and SENTRYVIBE_API_TOKEN (the xunit wrapper
// does, after starting the app). Skipped with a reason otherwise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, SentryVibeClient } from '../src/core/client';
import type { ProjectEvent } from '../src/core/events';
import { checkToken } from '../src/core/signIn';

const webUrl = process.env.SENTRYVIBE_WEB_URL;
const apiToken = process.env.SENTRYVIBE_API_TOKEN;
const skip = webUrl && apiToken ? false : 'set SENTRYVIBE_WEB_URL and SENTRYVIBE_API_TOKEN to run against a live SentryVibe Web';
if (skip) console.log(`# client.live: skipped: ${skip}`);

describe('SentryVibeClient (live Web)', { skip }, () => {
  const client = () => new SentryVibeClient({ webUrl: webUrl!, apiToken: apiToken! });

  it('Lists_templates', async () => {
    const templates = await client().listTemplates();
    assert.ok(Array.isArray(templates) && templates.length > 0, 'at least one built-in template');
    for (const t of templates) {
      assert.equal(typeof t.id, 'string');
      assert.equal(typeof t.name, 'string');
    }
  });

  it('Lists_runners_with_a_status', async () => {
    const runners = await client().listRunners();
    assert.ok(Array.isArray(runners));
    for (const r of runners) assert.ok(['online', 'offline'].includes(r.status), `status ${r.status}`);
  });

  it('Creates_a_project_with_agent_none_and_reads_it_back', async () => {
    const c = client();
    const templates = await c.listTemplates();
    const created = await c.createProject({ prompt: 'Create a React todo app (extension test)', agent: 'none', templateId: templates[0]?.id });
    assert.equal(typeof created.id, 'string');
    assert.equal(typeof created.slug, 'string');
    assert.ok(['pending', 'building', 'ready', 'failed', 'cancelled'].includes(created.status));
    const read = await c.getProject(created.id);
    assert.equal(read.id, created.id);
    assert.equal(read.slug, created.slug);
    assert.ok(read.devServer && typeof read.devServer.status === 'string');
    assert.ok((await c.listProjects()).some((p) => p.id === created.id));

    // The event stream answers as SSE (it may hold no events yet when no runner is online).
    const controller = new AbortController();
    const events: ProjectEvent[] = [];
    let opened = false;
    const stop = setTimeout(() => controller.abort(), 3_000);
    await c.followEvents(created.id, {
      signal: controller.signal,
      onStatus: (s) => {
        if (s.kind === 'open') opened = true;
      },
      onEvent: (e) => events.push(e),
    });
    clearTimeout(stop);
    assert.ok(opened, 'the SSE stream opened');
    for (const e of events) assert.match(e.type, /^[a-z]+(-[a-z]+)*$/);
  });

  it('Answers_bad_input_with_400_problem_json', async () => {
    await assert.rejects(client().createProject({ prompt: '' }), (e: unknown) => {
      assert.ok(e instanceof ApiError, String(e));
      assert.equal(e.status, 400);
      assert.ok(e.problem, 'a problem+json body');
      assert.ok(e.problem.detail || e.problem.errors || e.problem.title, 'detail, errors or title');
      return true;
    });
    await assert.rejects(client().createProject({ prompt: 'x', agent: 'not-an-agent' as 'none' }), (e: unknown) => e instanceof ApiError && e.status === 400);
    await assert.rejects(client().createProject({ prompt: 'x', templateUrl: 'not a repository' }),
      (e: unknown) => e instanceof ApiError && e.status === 400 && !!e.problem?.errors?.templateUrl);
  });

  it('Makes_a_runner_token_the_way_Start_Runner_does_and_lists_it_without_the_token', async () => {
    const c = client();
    const name = `vscode-live-test-${Date.now()}`;
    const made = await c.createRunnerToken({ name, runnerId: name });
    assert.equal(typeof made.id, 'string');
    assert.equal(made.name, name);
    assert.ok(made.token && made.token !== apiToken, 'a runner token of its own, not the API token');
    // A server that binds tokens to a runner id answers with the id it bound (the one asked for).
    if (made.runnerId != null) assert.equal(made.runnerId, name);
    const listed = (await c.listRunnerTokens()).find((t) => t.id === made.id);
    assert.ok(listed, 'listed');
    assert.ok(!JSON.stringify(listed).includes(made.token), 'the list never holds the token');
  });

  it('Names_the_account_the_token_speaks_for_and_refuses_an_unknown_personal_token', async () => {
    const check = await checkToken(webUrl!, apiToken!);
    assert.ok(check.ok, JSON.stringify(check));
    // A server from before accounts has no /api/account and names nobody.
    if (check.account) assert.ok(typeof check.account.name === 'string' && typeof check.account.id === 'string', JSON.stringify(check.account));
    const wrong = await checkToken(webUrl!, 'svp_not_a_token_of_this_server');
    assert.ok(!wrong.ok && wrong.reason === 'refused', JSON.stringify(wrong));
    assert.match(wrong.message, /^That token was refused by .+\. Make a new one on your account page\.$/);
  });

  it('Refuses_a_wrong_token', async () => {
    await assert.rejects(new SentryVibeClient({ webUrl: webUrl!, apiToken: 'wrong-token' }).listProjects(), (e: unknown) => e instanceof ApiError && (e.status === 401 || e.status === 403));
  });
});
