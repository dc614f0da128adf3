// The preview webview's HTML: a strict CSP whose only frame source is the preview's origin, and a nonce
// for the one script.
import { randomBytes } from 'node:crypto';

export interface PreviewHtmlInput {
  /** webview.cspSource */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  /** Origin of the (externally resolved) preview URL; undefined while there is nothing to frame. */
  frameOrigin?: string;
  nonce?: string;
  title: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

/** `http://a.preview.localhost:5173/x` → `http://a.preview.localhost:5173`; undefined for non-http(s). */
export function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

export function buildCsp(input: { cspSource: string; nonce: string; frameOrigin?: string }): string {
  return [
    "default-src 'none'",
    `frame-src ${input.frameOrigin ?? "'none'"}`,
    `img-src ${input.cspSource} data:`,
    `style-src ${input.cspSource}`,
    `font-src ${input.cspSource}`,
    `script-src 'nonce-${input.nonce}'`,
  ].join('; ');
}

export function buildPreviewHtml(input: PreviewHtmlInput): { html: string; nonce: string } {
  const nonce = input.nonce ?? makeNonce();
  const csp = buildCsp({ cspSource: input.cspSource, nonce, frameOrigin: input.frameOrigin });
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(input.styleUri)}">
<title>${escapeHtml(input.title)}</title>
</head>
<body>
<header class="toolbar">
  <span id="title" class="title">${escapeHtml(input.title)}</span>
  <span id="address" class="address"></span>
  <span class="spacer"></span>
  <button id="reload" type="button" title="Reload the preview">⟳ Reload</button>
  <button id="open" type="button" title="Open the preview in the browser">↗ Open in Browser</button>
  <button id="output" type="button" title="Show the build output">≡ Output</button>
</header>
<div id="banner" class="banner" hidden></div>
<main id="content"><section class="state"><div class="spinner"></div><p>Loading…</p></section></main>
<script nonce="${nonce}" src="${escapeAttr(input.scriptUri)}"></script>
</body>
</html>`;
  return { html, nonce };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function escapeAttr(s: string): string {
  return escapeHtml(s);
}
