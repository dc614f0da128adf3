// The preview URL rule of Protocol/PreviewUrls.cs, mirrored in src/core/previewUrls.ts: the same cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAcceptablePreviewUrl, isFramableUrl, isPreviewId, shownPreviewUrl } from '../src/core/previewUrls';

const id = '0123456789abcdef0123456789abcdef';

describe('preview URL rule (mirrors Protocol/PreviewUrls.cs)', () => {
  it('Refuses_script_data_and_file_urls', () => {
    for (const url of [
      "javascript:parent.document.title='PWNED'//",
      'JAVASCRIPT:alert(1)',
      ' javascript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'file:///etc/passwd',
      'vscode://command/workbench.action.terminal.new',
      'ftp://localhost/',
      'ws://localhost:5173/',
    ]) {
      assert.equal(isAcceptablePreviewUrl(url, 'preview.localhost:5090'), false, url);
    }
  });

  it('Refuses_other_hosts_and_user_info', () => {
    for (const url of [
      'http://evil.com/',
      'https://evil.com:5173/',
      'http://localhost@evil.com/',
      'http://user:pass@localhost:5173/',
      'http://localhost.evil.com/',
      'http://127.0.0.1.evil.com/',
      'http://trycloudflare.com/',
      'http://a.b.trycloudflare.com/',
      'http://x.trycloudflare.com.evil.com/',
      'http://10.0.0.1:5173/',
      'http://[::2]:5173/',
      'relative/path',
      '',
      '   ',
    ]) {
      assert.equal(isAcceptablePreviewUrl(url, 'preview.localhost:5090'), false, url);
    }
    assert.equal(isAcceptablePreviewUrl(undefined), false);
    assert.equal(isAcceptablePreviewUrl(null), false);
    assert.equal(isAcceptablePreviewUrl(`http://localhost/${'a'.repeat(2048)}`), false, 'longer than 2048');
  });

  it('Accepts_loopback_localhost_and_quick_tunnels_with_any_port', () => {
    for (const url of [
      'http://localhost:5173/',
      'http://LOCALHOST:5173',
      'http://localhost.:5173/',
      'http://todo.localhost:5173/',
      'http://127.0.0.1:5173/',
      'http://127.8.9.10/',
      'http://[::1]:5173/',
      'https://x.trycloudflare.com',
      'https://random-words-here.trycloudflare.com/path?q=1',
    ]) {
      assert.equal(isAcceptablePreviewUrl(url), true, url);
    }
  });

  it('Accepts_a_relay_url_only_as_one_preview_id_label_under_the_configured_domain', () => {
    assert.equal(isAcceptablePreviewUrl(`http://${id}.preview.example.com/`, 'preview.example.com'), true);
    assert.equal(isAcceptablePreviewUrl(`https://${id}.preview.example.com:8443/x`, 'preview.example.com:443'), true, 'port ignored');
    assert.equal(isAcceptablePreviewUrl(`http://${id}.preview.example.com/`, 'Preview.Example.com./'), true);
    assert.equal(isAcceptablePreviewUrl(`http://${id}.preview.example.com/`), false, 'no domain configured');
    assert.equal(isAcceptablePreviewUrl(`http://${id}.preview.example.com/`, 'other.example.com'), false);
    assert.equal(isAcceptablePreviewUrl(`http://${id.slice(1)}.preview.example.com/`, 'preview.example.com'), false, '31 hex');
    assert.equal(isAcceptablePreviewUrl(`http://${id.toUpperCase().replace(/[A-F]/g, 'g')}.preview.example.com/`, 'preview.example.com'), false);
    assert.equal(isAcceptablePreviewUrl(`http://a.${id}.preview.example.com/`, 'preview.example.com'), false, 'two labels');
    assert.equal(isAcceptablePreviewUrl('http://preview.example.com/', 'preview.example.com'), false, 'the domain itself');
    // The local AppHost's preview domain is under .localhost, which is loopback anyway.
    assert.equal(isAcceptablePreviewUrl(`http://${id}.preview.localhost:5090/`, 'preview.localhost:5090'), true);
  });

  it('Knows_a_preview_id_by_its_exact_shape', () => {
    assert.equal(isPreviewId(id), true);
    assert.equal(isPreviewId(id.toUpperCase()), false);
    assert.equal(isPreviewId(`${id}0`), false);
    assert.equal(isPreviewId(''), false);
  });

  it('Frames_only_http_urls_without_user_info_and_shows_refused_ones_as_refused', () => {
    assert.equal(isFramableUrl('https://abc-5173.app.github.dev/'), true);
    assert.equal(isFramableUrl('javascript:alert(1)'), false);
    assert.equal(isFramableUrl('http://u@localhost/'), false);
    assert.equal(shownPreviewUrl('http://localhost:5173/'), 'http://localhost:5173/');
    assert.equal(shownPreviewUrl('http://evil.com/'), '(this preview address was refused)');
    assert.equal(shownPreviewUrl(undefined), '');
  });
});
