// Does the preview answer? Uses node:http rather than fetch because `*.localhost` preview names do not
// resolve through the system resolver: those connect to loopback and send the name as Host.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Reachability } from './previewModel';

export function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

export function probeUrl(url: string, timeoutMs = 5_000): Promise<Reachability> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.resolve({ ok: false, error: `Not a URL: ${url}` });
  }
  const lib = u.protocol === 'https:' ? https : http;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return new Promise((resolve) => {
    const req = lib.request(
      {
        host: isLocalhostName(u.hostname) ? '127.0.0.1' : u.hostname,
        port,
        path: `${u.pathname}${u.search}`,
        method: 'GET',
        headers: { Host: u.host, Accept: 'text/html,*/*' },
        servername: isLocalhostName(u.hostname) ? undefined : u.hostname,
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        // 502/503/504 come from the relay when the dev server behind it is gone.
        if (status === 502 || status === 503 || status === 504) {
          resolve({ ok: false, error: `The preview answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}.` });
        } else {
          resolve({ ok: true });
        }
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.code ? `${e.code}: ${e.message}` : e.message }));
    req.end();
  });
}
