// Which preview addresses the extension may frame, open or show. A preview URL is reported by a runner, and a runner
// is not trusted with anything beyond its own projects (docs/security.md), so the URL is checked again here, where it
// is shown, even though the broker checks it where it is stored.
//
// This mirrors Protocol/PreviewUrls.cs (`PreviewUrls.IsAcceptable`) rule for rule; change both together.
// Runs in node and in the webview (no node imports).

/** Web makes preview ids as 16 random bytes in lower-case hex; anything else names no preview. */
export const PREVIEW_ID_LENGTH = 32;

/** The quick-tunnel domain of the cloudflared provider. */
export const CLOUDFLARE_TUNNEL_SUFFIX = '.trycloudflare.com';

const MAX_URL_LENGTH = 2048;

/** True when `label` has the exact shape of a preview id. */
export function isPreviewId(label: string): boolean {
  return label.length === PREVIEW_ID_LENGTH && /^[0-9a-f]+$/.test(label);
}

/**
 * True when a runner-reported URL may be framed, opened and shown: absolute http(s), no user info, and a host that is
 * loopback (`localhost`, `*.localhost`, 127.0.0.0/8, ::1), a Cloudflare quick tunnel (one label under
 * `.trycloudflare.com`), or a single preview-id label under `relayDomain` (the configured preview domain, e.g.
 * `preview.localhost:5090` from apphost.json; its port is ignored, as behind a proxy).
 */
export function isAcceptablePreviewUrl(url: string | null | undefined, relayDomain?: string | null): boolean {
  if (typeof url !== 'string' || !url.trim() || url.length > MAX_URL_LENGTH) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  if (u.username || u.password) return false;
  // URL gives the host in lower case and punycode (IdnHost in the C# rule); IPv6 in brackets.
  const host = u.hostname.replace(/\.+$/, '').toLowerCase();
  if (!host) return false;
  if (isLoopback(host) || host === 'localhost' || host.endsWith('.localhost')) return true;
  if (
    host.endsWith(CLOUDFLARE_TUNNEL_SUFFIX) &&
    host.length > CLOUDFLARE_TUNNEL_SUFFIX.length &&
    !host.slice(0, -CLOUDFLARE_TUNNEL_SUFFIX.length).includes('.')
  ) {
    return true;
  }
  if (relayDomain) {
    const domain = stripPort(relayDomain.trim().replace(/\/+$/, '').replace(/\.+$/, '')).toLowerCase();
    if (domain && host.endsWith(`.${domain}`) && isPreviewId(host.slice(0, host.length - domain.length - 1))) return true;
  }
  return false;
}

/**
 * The address the webview frames is VS Code's `asExternalUri` form of an accepted preview URL (in a remote window it
 * may be a forwarded port on another host), so it is held to http(s) without user info; the CSP then names its origin.
 */
export function isFramableUrl(url: string | null | undefined): boolean {
  if (typeof url !== 'string' || !url || url.length > MAX_URL_LENGTH) return false;
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && Boolean(u.hostname);
  } catch {
    return false;
  }
}

export const REFUSED_PREVIEW_TEXT = 'This preview address was refused';

/** What a notification, tree item or progress line shows for a preview URL: the URL, or that it was refused. */
export function shownPreviewUrl(url: string | null | undefined, relayDomain?: string | null): string {
  if (!url) return '';
  return isAcceptablePreviewUrl(url, relayDomain) ? url : `(${REFUSED_PREVIEW_TEXT.toLowerCase()})`;
}

/** 127.0.0.0/8 and ::1, as `Uri.IsLoopback` sees them (URL has already normalised the IPv4 forms). */
function isLoopback(host: string): boolean {
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
  return host === '[::1]';
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority;
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}
