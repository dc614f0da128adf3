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

/**
 * Which reachability probe of a preview may set its verdict. Each run of the dev server (its address appearing again
 * after a stop) is probed afresh, even while a probe of an earlier run is still out, and that earlier probe's answer is
 * dropped: a probe that hung while the server stopped must not call the restarted server unreachable. The web panel
 * keeps the same rule (Web/Components/Shared/PreviewPanel.razor).
 */
export class ProbeRuns {
  private run = 0;
  private out?: number;

  /** The preview's address appeared (again): a new run of the dev server. */
  next(): void {
    this.run++;
  }

  /** The run to probe now, or undefined while a probe of this run is already out. */
  begin(): number | undefined {
    if (this.out === this.run) return undefined;
    this.out = this.run;
    return this.run;
  }

  /** A probe of `run` answered: true when its verdict still belongs to the current run. */
  end(run: number): boolean {
    if (this.out === run) this.out = undefined;
    return run === this.run;
  }
}
