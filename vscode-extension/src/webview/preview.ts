// Runs inside the preview webview: renders the state the extension sends and turns clicks into typed messages.
import { isToWebview, type FromWebview, type ToWebview } from '../core/messages';
import type { BuildBanner, PreviewView } from '../core/previewModel';
import { isAcceptablePreviewUrl, isFramableUrl, REFUSED_PREVIEW_TEXT } from '../core/previewUrls';

declare function acquireVsCodeApi(): { postMessage(message: FromWebview): void; setState(s: unknown): void; getState(): unknown };

const vscode = acquireVsCodeApi();
const content = document.getElementById('content')!;
const banner = document.getElementById('banner')!;
const address = document.getElementById('address')!;
const title = document.getElementById('title')!;
let currentFrameUrl: string | undefined;

function post(message: FromWebview): void {
  vscode.postMessage(message);
}

document.getElementById('reload')!.addEventListener('click', () => {
  reloadFrame();
  post({ type: 'reload' });
});
document.getElementById('open')!.addEventListener('click', () => post({ type: 'open-in-browser' }));
document.getElementById('output')!.addEventListener('click', () => post({ type: 'show-output' }));

/**
 * Only the extension speaks to this script. VS Code's webview host relays the extension's messages into this document
 * with `postMessage(message, window.origin)`, so they arrive with this document's own origin (vscode-webview://…).
 * The framed preview is another origin: whatever it posts (`parent.postMessage`) has its origin and comes from the
 * iframe's window, and is ignored, as is anything that is not a known message shape.
 */
function fromExtension(event: MessageEvent): boolean {
  if (event.origin !== window.origin) return false;
  const frame = content.querySelector('iframe');
  if (frame && event.source === frame.contentWindow) return false;
  return isToWebview(event.data);
}

window.addEventListener('message', (event: MessageEvent) => {
  if (!fromExtension(event)) return;
  const message = event.data as ToWebview;
  if (message.type === 'state') render(message.view, message.title, message.frameUrl, message.relayDomain);
  else if (message.type === 'reload') reloadFrame();
});

function reloadFrame(): void {
  const frame = content.querySelector('iframe');
  if (frame && currentFrameUrl) {
    frame.src = 'about:blank';
    setTimeout(() => (frame.src = currentFrameUrl!), 30);
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string } = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  for (const c of children) e.appendChild(c);
  return e;
}

function button(label: string, message: FromWebview, primary = false): HTMLButtonElement {
  const b = el('button', { className: primary ? 'primary' : '', text: label });
  b.type = 'button';
  b.addEventListener('click', () => post(message));
  return b;
}

function state(kind: string, heading: string, ...rest: Node[]): HTMLElement {
  const section = el('section', { className: `state state-${kind}` });
  if (kind === 'building' || kind === 'installing' || kind === 'starting' || kind === 'loading' || kind === 'pending') {
    section.appendChild(el('div', { className: 'spinner' }));
  }
  section.appendChild(el('h2', { text: heading }));
  for (const r of rest) section.appendChild(r);
  return section;
}

function buildLines(b: BuildBanner): Node[] {
  const nodes: Node[] = [];
  if (b.todo) nodes.push(el('p', { className: 'todo', text: `${b.todo}${b.total ? ` (${b.done}/${b.total})` : ''}` }));
  if (b.total) {
    const bar = el('div', { className: 'progress' }, el('div', { className: 'progress-fill' }));
    (bar.firstChild as HTMLElement).style.width = `${Math.round((100 * b.done) / b.total)}%`;
    nodes.push(bar);
  }
  if (b.activity) nodes.push(el('p', { className: 'activity', text: b.activity }));
  return nodes;
}

function logBlock(lines: string[]): HTMLElement {
  return el('pre', { className: 'log', text: lines.join('\n') || '(no output)' });
}

function render(view: PreviewView, heading: string, frameUrl: string | undefined, relayDomain: string | undefined): void {
  // The preview URL rule again, here where the address is framed and shown (previewUrls.ts).
  if ((view.kind === 'running' || view.kind === 'unreachable') && !isAcceptablePreviewUrl(view.previewUrl, relayDomain)) {
    view = { kind: 'refused', previewUrl: view.previewUrl };
  } else if (view.kind === 'running' && frameUrl !== undefined && !isFramableUrl(frameUrl)) {
    view = { kind: 'refused', previewUrl: frameUrl };
  }
  title.textContent = heading;
  vscode.setState({ kind: view.kind });
  banner.hidden = true;
  banner.textContent = '';

  if (view.kind === 'running' && frameUrl) {
    address.textContent = view.previewUrl;
    if (view.building) {
      banner.hidden = false;
      banner.textContent = `Building: ${view.building.todo ?? view.building.activity ?? '…'}`;
    }
    const existing = content.querySelector('iframe');
    if (existing && currentFrameUrl === frameUrl) return; // keep the app's state: no reload on unrelated updates
    currentFrameUrl = frameUrl;
    const frame = el('iframe');
    frame.src = frameUrl;
    frame.title = heading;
    frame.setAttribute('allow', 'clipboard-read; clipboard-write; fullscreen');
    frame.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups allow-modals allow-downloads');
    content.replaceChildren(frame);
    return;
  }

  currentFrameUrl = undefined;
  address.textContent = '';
  let section: HTMLElement;
  switch (view.kind) {
    case 'loading':
      section = state('loading', 'Loading…');
      break;
    case 'api-error':
      section = state('api-error', 'SentryVibe is unreachable', el('p', { text: view.message }), button('Retry', { type: 'retry' }, true));
      break;
    case 'runner-offline':
      section = state(
        'runner-offline',
        'The runner is offline',
        el('p', { text: `${view.runnerName ? `Runner "${view.runnerName}"` : 'No runner'} is connected${view.lastSeenAt ? ` (last seen ${new Date(view.lastSeenAt).toLocaleString()})` : ''}. Builds and previews run on a runner; start one and this panel continues by itself.` }),
        button('Start Runner', { type: 'start-runner' }, true),
      );
      break;
    case 'pending':
      section = state('pending', 'Waiting to build', el('p', { text: view.reason ?? 'The build is queued for the runner.' }));
      break;
    case 'building':
      section = state('building', 'Building your app', ...buildLines(view), button('Show Output', { type: 'show-output' }));
      break;
    case 'installing':
      section = state('installing', 'Installing dependencies', el('p', { className: 'last-line', text: view.lastLine ?? '' }));
      break;
    case 'starting':
      section = state('starting', 'Starting the dev server', el('p', { className: 'last-line', text: view.lastLine ?? view.phase ?? '' }));
      break;
    case 'unreachable':
      section = state(
        'unreachable',
        'The preview does not answer',
        el('p', { text: `${view.previewUrl}: ${view.error}` }),
        button('Retry', { type: 'retry' }, true),
        button('Restart Dev Server', { type: 'restart-dev-server' }),
      );
      break;
    case 'refused':
      section = state(
        'refused',
        REFUSED_PREVIEW_TEXT,
        el('p', {
          text: 'The runner reported a preview address that is not loopback, a Cloudflare quick tunnel or this SentryVibe\'s preview domain, so it is neither framed nor opened.',
        }),
        el('p', { className: 'refused-url', text: view.previewUrl.length > 200 ? `${view.previewUrl.slice(0, 200)}…` : view.previewUrl }),
        button('Show Output', { type: 'show-output' }),
      );
      break;
    case 'crashed':
      section = state(
        'crashed',
        `The dev server crashed${view.exitCode !== undefined ? ` (exit code ${view.exitCode})` : ''}`,
        ...(view.reason ? [el('p', { text: view.reason })] : []),
        logBlock(view.lastLines),
        button('Restart Dev Server', { type: 'restart-dev-server' }, true),
      );
      break;
    case 'stopped':
      section = state('stopped', 'The dev server is not running', button('Start Dev Server', { type: 'restart-dev-server' }, true));
      break;
    case 'failed':
      section = state('failed', 'The build failed', el('p', { text: view.reason ?? 'No reason was given.' }), button('Show Output', { type: 'show-output' }));
      break;
    case 'cancelled':
      section = state('cancelled', 'The build was cancelled', el('p', { text: view.reason ?? '' }));
      break;
    case 'running':
      section = state('loading', 'Resolving the preview address…');
      break;
  }
  content.replaceChildren(section);
}

post({ type: 'ready' });
