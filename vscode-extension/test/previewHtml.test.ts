import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFromWebview, isToWebview } from '../src/core/messages';
import { buildCsp, buildPreviewHtml, originOf } from '../src/core/previewHtml';

describe('preview webview HTML', () => {
  it('Allows_frames_only_from_the_preview_origin_and_scripts_only_with_the_nonce', () => {
    const csp = buildCsp({ cspSource: 'https://*.vscode-cdn.net', nonce: 'abc', frameOrigin: 'http://x.preview.localhost:5090' });
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-src http:\/\/x\.preview\.localhost:5090(;|$)/);
    assert.match(csp, /script-src 'nonce-abc'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*;/);
    assert.match(buildCsp({ cspSource: 's', nonce: 'n' }), /frame-src 'none'/);
  });

  it('Puts_the_nonce_on_the_one_script_and_escapes_the_title', () => {
    const { html, nonce } = buildPreviewHtml({ cspSource: 'vscode-resource:', scriptUri: 'vscode-resource:/p.js', styleUri: 'vscode-resource:/p.css', title: '<b>"Todo"</b>' });
    assert.ok(nonce.length >= 16);
    const scripts = html.match(/<script[^>]*>/g) ?? [];
    assert.equal(scripts.length, 1);
    assert.ok(scripts[0]!.includes(`nonce="${nonce}"`));
    assert.ok(!html.includes('<b>"Todo"</b>'));
    assert.ok(html.includes('&lt;b&gt;&quot;Todo&quot;&lt;/b&gt;'));
    assert.notEqual(buildPreviewHtml({ cspSource: 'a', scriptUri: 'b', styleUri: 'c', title: 't' }).nonce, nonce);
  });

  it('Takes_the_origin_of_http_urls_only', () => {
    assert.equal(originOf('http://a.preview.localhost:5090/path?q=1'), 'http://a.preview.localhost:5090');
    assert.equal(originOf('https://x.trycloudflare.com/'), 'https://x.trycloudflare.com');
    assert.equal(originOf('javascript:alert(1)'), undefined);
    assert.equal(originOf('not a url'), undefined);
  });

  it('Accepts_only_known_messages_from_the_webview', () => {
    assert.equal(isFromWebview({ type: 'restart-dev-server' }), true);
    assert.equal(isFromWebview({ type: 'run-shell', command: 'rm -rf /' }), false);
    assert.equal(isFromWebview('reload'), false);
    assert.equal(isFromWebview(null), false);
  });

  it('Accepts_only_the_exact_message_shapes_with_no_extra_fields', () => {
    assert.equal(isFromWebview({ type: 'open-in-browser', url: 'javascript:alert(1)' }), false, 'no URL rides along');
    assert.equal(isFromWebview({ type: 'toString' }), false);
    assert.equal(isFromWebview({ type: '__proto__' }), false);
    assert.equal(isFromWebview(['ready']), false);
    assert.equal(isToWebview({ type: 'state', title: 't', view: { kind: 'running', previewUrl: 'http://localhost:1/' } }), true);
    assert.equal(isToWebview({ type: 'state', title: 't', view: { kind: 'running' } }), false, 'running without a URL');
    assert.equal(isToWebview({ type: 'state', title: 't', view: { kind: 'exploit' } }), false);
    assert.equal(isToWebview({ type: 'openExternal', url: 'https://evil.example' }), false);
    assert.equal(isToWebview({ type: 'reload' }), true);
  });
});
