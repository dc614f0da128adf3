import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { isLocalhostName, ProbeRuns, probeUrl } from '../src/core/probe';

describe('preview probe', () => {
  it('Reaches_a_preview_localhost_name_through_loopback_with_the_name_as_Host', async () => {
    const hosts: string[] = [];
    const server = http.createServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.writeHead(req.headers.host?.startsWith('gone.') ? 502 : 200);
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      assert.deepEqual(await probeUrl(`http://abc123.preview.localhost:${port}/`), { ok: true });
      const gone = await probeUrl(`http://gone.preview.localhost:${port}/`);
      assert.equal(gone.ok, false);
      assert.match(gone.ok ? '' : gone.error, /502/);
    } finally {
      server.close();
    }
    assert.deepEqual(hosts, [`abc123.preview.localhost:${port}`, `gone.preview.localhost:${port}`]);
  });

  it('Reports_a_refused_connection', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await probeUrl(`http://localhost:${port}/`, 2_000);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /ECONNREFUSED/);
  });

  it('Probes_a_restarted_dev_server_afresh_and_drops_the_answer_of_a_probe_from_the_run_before', () => {
    const runs = new ProbeRuns();
    runs.next();
    const first = runs.begin();
    assert.notEqual(first, undefined);
    assert.equal(runs.begin(), undefined, 'one probe of a run at a time');
    runs.next(); // the dev server stopped and started again while the first probe is out
    const second = runs.begin();
    assert.notEqual(second, undefined, 'the new run is probed at once');
    assert.equal(runs.end(first as number), false, 'the earlier run\'s answer is dropped');
    assert.equal(runs.end(second as number), true);
    assert.notEqual(runs.begin(), undefined, 'a re-probe once the last probe answered');
  });

  it('Knows_localhost_names', () => {
    assert.equal(isLocalhostName('localhost'), true);
    assert.equal(isLocalhostName('a.preview.LOCALHOST'), true);
    assert.equal(isLocalhostName('localhost.example.com'), false);
  });
});
