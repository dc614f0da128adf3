// ProjectFeed against a stand-in Web: snapshot first, then only newer events, and a fresh snapshot after the
// events the snapshot tells better.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { SentryVibeClient } from '../src/core/client';
import type { ProjectEvent } from '../src/core/events';
import { ProjectFeed } from '../src/core/projectFeed';

/** The event shape Web sends: the log row, with the typed body under `data`. */
const row = (id: number, data: Record<string, unknown>) => ({ id, type: data.type, projectId: 'p1', timestamp: '2026-11-25T21:00:00Z', data });

describe('ProjectFeed', () => {
  it('Continues_from_the_snapshot_and_refreshes_it_when_the_preview_comes_up', async () => {
    const log = [
      row(1, { type: 'build-started', prompt: 'x', templateId: 'vite-react', agent: 'none', turn: 1 }),
      row(2, { type: 'build-completed', turns: 1, durationMs: 10, costUsd: 0 }),
      row(3, { type: 'dev-server-starting', command: 'npm run dev', phase: 'installing' }),
      row(4, { type: 'port-detected', port: 5173, previewUrl: 'http://abc.preview.localhost:5090', provider: 'relay' }),
    ];
    let snapshots = 0;
    const lastEventIds: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      if (req.url === '/api/projects/p1') {
        snapshots++;
        const running = snapshots > 1;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({
          id: 'p1', slug: 'todo-app', name: 'Todo App', status: 'ready', runnerId: 'local', todos: [], lastEventId: running ? 4 : 2,
          devServer: running ? { status: 'running', port: 5173, previewUrl: 'http://abc.preview.localhost:5090', lastLines: [] } : { status: 'stopped', lastLines: [] },
        }));
        return;
      }
      lastEventIds.push(req.headers['last-event-id'] as string | undefined);
      const from = Number(req.headers['last-event-id'] ?? 0);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('retry: 2000\n\n');
      // Like Web, the stream honours Last-Event-ID; the feed must also ignore anything older.
      for (const e of log.filter((x) => x.id > from - 1)) res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new SentryVibeClient({ webUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiToken: 't' });
    const feed = new ProjectFeed('p1', async () => client, 'now');
    const seen: ProjectEvent[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no running preview within 5 s')), 5_000);
        feed.subscribe({
          onEvent: (e) => seen.push(e),
          onChange: (m) => {
            if (snapshots > 1 && m.view().kind === 'running') {
              clearTimeout(timer);
              resolve();
            }
          },
        });
        void feed.start();
      });
    } finally {
      feed.dispose();
      await feed.done;
      server.closeAllConnections();
      server.close();
    }
    assert.deepEqual(seen.map((e) => [e.seq, e.type]), [[3, 'dev-server-starting'], [4, 'port-detected']]);
    assert.equal(lastEventIds[0], '2');
    assert.equal(feed.model.previewUrl, 'http://abc.preview.localhost:5090');
    assert.equal(feed.model.name, 'Todo App');
  });
});

describe('ProjectFeed from the start', () => {
  it('Reports_every_event_once_even_when_a_snapshot_is_ahead_of_the_stream', async () => {
    const log = [1, 2, 3, 4].map((id) => row(id, { type: 'build-log', message: `line ${id}` }));
    let connections = 0;
    const server = http.createServer((req, res) => {
      if (req.url === '/api/projects/p1') {
        // The snapshot already includes all four events.
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: 'p1', slug: 's', status: 'building', lastEventId: 4, todos: [], devServer: { status: 'stopped' } }));
        return;
      }
      connections++;
      const from = Number(req.headers['last-event-id'] ?? 0);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('retry: 10\n\n');
      // The first connection delivers two events, waits past the snapshot refresh, then drops.
      const batch = log.filter((e) => e.id > from).slice(0, connections === 1 ? 2 : 4);
      for (const e of batch) res.write(`id: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`);
      if (connections === 1) setTimeout(() => res.socket?.destroy(), 600);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new SentryVibeClient({ webUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiToken: 't' });
    const feed = new ProjectFeed('p1', async () => client, 'start');
    const seen: number[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only saw ${seen.join(',')}`)), 5_000);
        feed.subscribe({
          onEvent: (e) => {
            seen.push(e.seq!);
            if (seen.length === 4) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
        void feed.start({ id: 'p1', slug: 's', status: 'pending' });
      });
    } finally {
      feed.dispose();
      await feed.done;
      server.closeAllConnections();
      server.close();
    }
    assert.deepEqual(seen, [1, 2, 3, 4]);
    assert.equal(connections, 2);
  });
});
