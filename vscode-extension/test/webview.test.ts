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

  before(async () => {
    const bundle = await esbuild.build({ entryPoints: [path.join(root, 'src', 'webview', 'preview.ts')], bundle: true, format: 'iife', write: false, platform: 'browser' });
    const script = bundle.outputFiles[0]!.text;
    const css = fs.readFileSync(path.join(root, 'media', 'preview.css'), 'utf8');
    preview = await listen((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1 id="app">Todo App is running</h1>'));
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

  it('Blocks_frames_from_any_other_origin', async () => {
    await send({ type: 'state', title: 'Todo App', view: { kind: 'running', previewUrl: `${other.origin}/` }, frameUrl: `${other.origin}/` });
    await page.waitForFunction(() => (window as unknown as { __violations: string[] }).__violations.length > 0, undefined, { timeout: 5_000 });
    const v = await violations();
    assert.ok(v.some((x) => x.startsWith('frame-src') && x.includes(other.origin)), v.join('\n'));
  });
});
