// The preview webview's real HTML, CSP and script in Chromium (VS Code webviews are Chromium too): states render,
// buttons post typed messages, the iframe loads the preview origin and nothing else. Skipped without Chromium.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FromWebview, ToWebview } from '../src/core/messages';
import { buildPreviewHtml } from '../src/core/previewHtml';

const root = path.resolve(__dirname, '..', '..');
const artifacts = path.join(root, 'test-artifacts');
const chromiumPath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
  (p) => p && fs.existsSync(p),
);
const skip = chromiumPath ? false : 'no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)';
if (skip) console.log(`# webview: skipped: ${skip}`);

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; origin: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('preview webview in Chromium', { skip }, () => {
  let browser: Browser;
  let page: Page;
  let host: { server: http.Server; origin: string };
  let preview: { server: http.Server; origin: string };
  let other: { server: http.Server; origin: string };
  let forgeLoads = 0;
  let forgedDone = 0;

  before(async () => {
    const bundle = await esbuild.build({ entryPoints: [path.join(root, 'src', 'webview', 'preview.ts')], bundle: true, format: 'iife', write: false, platform: 'browser' });
    const script = bundle.outputFiles[0]!.text;
    const css = fs.readFileSync(path.join(root, 'media', 'preview.css'), 'utf8');
    preview = await listen((req, res) => {
      if (req.url === '/forged') {
        forgedDone++;
        return void res.writeHead(204).end();
      }
      if (req.url === '/forge') {
        // A hostile preview page: posts look-alike messages to the webview that frames it.
        forgeLoads++;
        const forged = [
          { type: 'state', title: 'PWNED', view: { kind: 'running', previewUrl: `${other.origin}/` }, frameUrl: `${other.origin}/` },
          { type: 'state', title: 'PWNED', view: { kind: 'crashed', lastLines: ['forged'] } },
          { type: 'openExternal', url: 'https://evil.example/' },
          { type: 'open-in-browser' },
          { type: 'reload' },
        ];
        return void res
          .writeHead(200, { 'Content-Type': 'text/html' })
          .end(`<h1 id="app">forger</h1><script>for (const m of ${JSON.stringify(forged)}) { parent.postMessage(m, '*'); top.postMessage(m, '*'); } fetch('/forged', { method: 'POST' });</script>`);
      }
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1 id="app">Todo App is running</h1>');
    });
    other = await listen((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1>elsewhere</h1>'));
    host = await listen((req, res) => {
      if (req.url === '/preview.js') return void res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(script);
      if (req.url === '/preview.css') return void res.writeHead(200, { 'Content-Type': 'text/css' }).end(css);
      const { html } = buildPreviewHtml({
        cspSource: host.origin,
        scriptUri: `${host.origin}/preview.js`,
        styleUri: `${host.origin}/preview.css`,
        frameOrigin: preview.origin,
        title: 'Todo App',
      });
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(html);
    });
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 900, height: 560 } });
    // Stands in for VS Code's webview host: acquireVsCodeApi, and a record of CSP violations.
    await page.addInitScript(() => {
      const w = window as unknown as { __posted: unknown[]; __violations: string[]; acquireVsCodeApi: () => unknown };
      w.__posted = [];
      w.__violations = [];
      w.acquireVsCodeApi = () => ({ postMessage: (m: unknown) => w.__posted.push(m), setState: () => {}, getState: () => undefined });
      document.addEventListener('securitypolicyviolation', (e) => w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(`${host.origin}/`);
    fs.mkdirSync(artifacts, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    for (const s of [host, preview, other]) s?.server.close();
  });

  const send = (message: ToWebview) => page.evaluate((m) => window.postMessage(m, '*'), message);
  const posted = () => page.evaluate(() => (window as unknown as { __posted: FromWebview[] }).__posted);
  const violations = () => page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);

  it('Runs_its_nonce_script_under_the_CSP_and_says_ready', async () => {
    await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
    assert.deepEqual(await violations(), []);
  });

  it('Shows_building_with_the_current_todo', async () => {
    await send({ type: 'state', title: 'Todo App', view: { kind: 'building', todo: 'Adding the todo list', done: 1, total: 3, activity: 'Write src/App.tsx' } });
    await page.getByText('Adding the todo list (1/3)').waitFor();
    await page.getByText('Write src/App.tsx').waitFor();
    await page.screenshot({ path: path.join(artifacts, 'webview-building.png') });
  });

  it('Shows_a_crash_with_exit_code_and_log_and_restarts_on_click', async () => {
    await send({ type: 'state', title: 'Todo App', view: { kind: 'crashed', exitCode: 1, lastLines: ['> vite', "Error: Cannot find module 'react'"] } });
    await page.getByText('The dev server crashed (exit code 1)').waitFor();
    await page.getByText("Error: Cannot find module 'react'").waitFor();
    await page.screenshot({ path: path.join(artifacts, 'webview-crashed.png') });
    await page.getByRole('button', { name: 'Restart Dev Server' }).click();
    assert.deepEqual((await posted()).at(-1), { type: 'restart-dev-server' });
  });

  it('Offers_to_start_a_runner_when_it_is_offline', async () => {
    await send({ type: 'state', title: 'Todo App', view: { kind: 'runner-offline', runnerName: 'local', projectStatus: 'pending' } });
    await page.getByRole('button', { name: 'Start Runner' }).click();
    assert.deepEqual((await posted()).at(-1), { type: 'start-runner' });
  });

  it('Frames_the_running_preview_and_posts_toolbar_actions', async () => {
    await send({ type: 'state', title: 'Todo App', view: { kind: 'running', previewUrl: `${preview.origin}/`, port: 5173 }, frameUrl: `${preview.origin}/` });
    const frame = page.frameLocator('iframe');
    await frame.locator('#app').waitFor({ timeout: 5_000 });
    assert.equal(await frame.locator('#app').textContent(), 'Todo App is running');
    await page.screenshot({ path: path.join(artifacts, 'webview-running.png') });
    await page.getByRole('button', { name: /Open in Browser/ }).click();
    assert.deepEqual((await posted()).at(-1), { type: 'open-in-browser' });
    await page.getByRole('button', { name: /Reload/ }).click();
    assert.deepEqual((await posted()).at(-1), { type: 'reload' });
    assert.deepEqual(await violations(), []);
  });

  it('Ignores_messages_the_framed_preview_page_posts_to_it', async () => {
    // Every title the toolbar ever shows, and every message the webview sends the extension from here on.
    await page.evaluate(() => {
      const w = window as unknown as { __titles: string[]; __posted: unknown[] };
      w.__titles = [];
      w.__posted.length = 0;
      new MutationObserver(() => w.__titles.push(document.getElementById('title')!.textContent ?? '')).observe(document.getElementById('title')!, { childList: true, characterData: true, subtree: true });
    });
    await send({ type: 'state', title: 'Forger App', view: { kind: 'running', previewUrl: `${preview.origin}/forge` }, frameUrl: `${preview.origin}/forge` });
    // The forger has posted everything once it calls home.
    for (const deadline = Date.now() + 5_000; forgedDone === 0; ) {
      if (Date.now() > deadline) assert.fail('the forging preview page never ran');
      await new Promise((r) => setTimeout(r, 20));
    }
    // A message of our own after the forged ones: once it shows, the forged ones have been handled (same queue).
    await send({ type: 'state', title: 'Forger App (checked)', view: { kind: 'running', previewUrl: `${preview.origin}/forge` }, frameUrl: `${preview.origin}/forge` });
    await page.getByText('Forger App (checked)').waitFor();
    const titles = await page.evaluate(() => (window as unknown as { __titles: string[] }).__titles);
    assert.ok(!titles.includes('PWNED'), titles.join(' | '));
    assert.equal(await page.locator('iframe').getAttribute('src'), `${preview.origin}/forge`, 'still framing the preview, not the forged address');
    assert.equal(await page.getByText('forged').count(), 0);
    assert.deepEqual(await posted(), [], 'nothing was sent on to the extension');
    assert.equal(forgeLoads, 1, 'a forged reload did not reload the frame');
    assert.deepEqual(await violations(), []);
  });

  it('Refuses_a_preview_address_outside_the_rule_and_never_frames_it', async () => {
    for (const bad of ["javascript:parent.document.title='PWNED'//", 'data:text/html,<script>parent.document.title=1</script>', 'http://evil.com/', 'http://localhost@evil.com/']) {
      await send({ type: 'state', title: 'Todo App', view: { kind: 'running', previewUrl: bad }, frameUrl: bad });
      await page.getByText('This preview address was refused').waitFor({ timeout: 5_000 });
      assert.equal(await page.locator('iframe').count(), 0, bad);
      assert.equal(await page.locator('#address').textContent(), '', bad);
      assert.equal(await page.title(), 'Todo App');
      if (bad.startsWith('javascript:')) await page.screenshot({ path: path.join(artifacts, 'webview-refused.png') });
      await send({ type: 'state', title: 'Todo App', view: { kind: 'loading' } });
      await page.getByText('Loading…').waitFor();
    }
    // A relay address under the configured preview domain is accepted (and then held to the CSP's one origin).
    const relay = 'http://0123456789abcdef0123456789abcdef.preview.example.com/';
    await send({ type: 'state', title: 'Todo App', view: { kind: 'running', previewUrl: relay }, frameUrl: relay, relayDomain: 'preview.example.com' });
    await page.locator('iframe').waitFor();
    assert.equal(await page.locator('#address').textContent(), relay);
    await send({ type: 'state', title: 'Todo App', view: { kind: 'loading' } });
  });

  it('Blocks_frames_from_any_other_origin', async () => {
    await send({ type: 'state', title: 'Todo App', view: { kind: 'running', previewUrl: `${other.origin}/` }, frameUrl: `${other.origin}/` });
    await page.waitForFunction(() => (window as unknown as { __violations: string[] }).__violations.length > 0, undefined, { timeout: 5_000 });
    const v = await violations();
    assert.ok(v.some((x) => x.startsWith('frame-src') && x.includes(other.origin)), v.join('\n'));
  });
});
