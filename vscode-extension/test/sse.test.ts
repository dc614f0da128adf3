import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { backoffDelay, followSse, SseFatalError, SseParser, type FollowStatus, type SseMessage } from '../src/core/sse';

function parseAll(chunks: string[], initialId = ''): { messages: SseMessage[]; retries: number[]; comments: string[] } {
  const messages: SseMessage[] = [];
  const retries: number[] = [];
  const comments: string[] = [];
  const parser = new SseParser(
    { onMessage: (m) => messages.push(m), onRetry: (r) => retries.push(r), onComment: (c) => comments.push(c) },
    initialId,
  );
  for (const c of chunks) parser.push(c);
  parser.end();
  return { messages, retries, comments };
}

describe('SseParser', () => {
  const stream = 'id: 1\nevent: build-started\ndata: {"type":"build-started"}\n\nid: 2\ndata: {"type":"agent-message","text":"hi"}\n\n';

  it('Parses_events_with_ids_and_names', () => {
    const { messages } = parseAll([stream]);
    assert.deepEqual(messages, [
      { event: 'build-started', data: '{"type":"build-started"}', lastEventId: '1' },
      { event: 'message', data: '{"type":"agent-message","text":"hi"}', lastEventId: '2' },
    ]);
  });

  it('Gives_the_same_events_whatever_the_chunk_boundaries', () => {
    const whole = parseAll([stream]).messages;
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      assert.deepEqual(parseAll(chunks).messages, whole, `chunk size ${size}`);
    }
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(parseAll([stream.slice(0, cut), stream.slice(cut)]).messages, whole, `cut at ${cut}`);
    }
  });

  it('Accepts_CRLF_and_CR_line_ends_even_when_CRLF_is_split_across_chunks', () => {
    const crlf = stream.replace(/\n/g, '\r\n');
    const cr = stream.replace(/\n/g, '\r');
    const expected = parseAll([stream]).messages;
    assert.deepEqual(parseAll([crlf]).messages, expected);
    assert.deepEqual(parseAll([cr]).messages, expected);
    const at = crlf.indexOf('\r\n');
    assert.deepEqual(parseAll([crlf.slice(0, at + 1), crlf.slice(at + 1)]).messages, expected);
    assert.deepEqual(parseAll(crlf.split('')).messages, expected);
  });

  it('Joins_multi_line_data_with_newlines', () => {
    const { messages } = parseAll(['data: line one\ndata:line two\ndata\ndata:  indented\n\n']);
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.data, 'line one\nline two\n\n indented');
  });

  it('Reports_comments_and_dispatches_nothing_for_them', () => {
    const { messages, comments } = parseAll([': keep-alive\n\n:ping\n\ndata: x\n\n']);
    assert.deepEqual(comments, ['keep-alive', 'ping']);
    assert.deepEqual(messages.map((m) => m.data), ['x']);
  });

  it('Reports_numeric_retry_and_ignores_other_values', () => {
    const { retries } = parseAll(['retry: 2500\n\nretry: soon\n\nretry: 10\n\n']);
    assert.deepEqual(retries, [2500, 10]);
  });

  it('Keeps_the_last_id_across_events_and_ignores_ids_with_NUL', () => {
    const { messages } = parseAll(['id: 7\ndata: a\n\ndata: b\n\nid: 8\0x\ndata: c\n\nid\ndata: d\n\n']);
    assert.deepEqual(messages.map((m) => m.lastEventId), ['7', '7', '7', '']);
  });

  it('Starts_from_the_given_last_event_id', () => {
    const { messages } = parseAll(['data: a\n\n'], '41');
    assert.equal(messages[0]!.lastEventId, '41');
  });

  it('Drops_an_event_cut_off_by_the_end_of_the_stream', () => {
    const { messages } = parseAll(['data: complete\n\ndata: cut off']);
    assert.deepEqual(messages.map((m) => m.data), ['complete']);
  });

  it('Ignores_a_leading_BOM_unknown_fields_and_id_only_blocks', () => {
    const { messages } = parseAll(['\uFEFFdata: a\nfoo: bar\n\nid: 3\n\n']);
    assert.deepEqual(messages.map((m) => m.data), ['a']);
  });
});

describe('backoffDelay', () => {
  it('Doubles_up_to_the_cap_with_jitter_within_20_percent', () => {
    assert.equal(backoffDelay(500, 15_000, 1, () => 0.5), 500);
    assert.equal(backoffDelay(500, 15_000, 2, () => 0.5), 1000);
    assert.equal(backoffDelay(500, 15_000, 3, () => 0.5), 2000);
    assert.equal(backoffDelay(500, 15_000, 20, () => 0.5), 15_000);
    assert.equal(backoffDelay(1000, 15_000, 1, () => 0), 800);
    assert.equal(backoffDelay(1000, 15_000, 1, () => 1), 1200);
  });
});

/** A real HTTP server that serves events 1..total, and drops the first connection after `dropAfter` events. */
async function startEventServer(total: number, dropAfter: number) {
  const requests: { lastEventId?: string; auth?: string; accept?: string }[] = [];
  const server = http.createServer((req, res) => {
    const lastEventId = req.headers['last-event-id'] as string | undefined;
    requests.push({ lastEventId, auth: req.headers.authorization, accept: req.headers.accept });
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write('retry: 50\n\n: hello\n\n');
    const from = lastEventId ? Number(lastEventId) + 1 : 1;
    const first = requests.length === 1;
    let n = from;
    const timer = setInterval(() => {
      if (n > total) {
        clearInterval(timer);
        return; // keep the stream open, like a live server
      }
      // Write the event in two pieces to cross chunk boundaries on the wire too.
      const text = `id: ${n}\nevent: build-log\ndata: {"type":"build-log",\ndata: "message":"line ${n}"}\n\n`;
      res.write(text.slice(0, 17));
      if (first && n === dropAfter) {
        clearInterval(timer);
        // The drop: once the event is on the wire, the socket goes away mid-stream, with no clean end.
        res.write(text.slice(17), () => res.socket?.destroy());
        return;
      }
      res.write(text.slice(17));
      n++;
    }, 5);
    req.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/projects/p1/events`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('followSse', () => {
  it('Resumes_with_Last_Event_ID_after_a_drop_without_losing_or_repeating_events', async () => {
    const server = await startEventServer(10, 4);
    const controller = new AbortController();
    const got: string[] = [];
    const statuses: FollowStatus['kind'][] = [];
    try {
      const following = followSse({
        url: server.url,
        headers: { Authorization: 'Bearer t0k' },
        signal: controller.signal,
        initialDelayMs: 20,
        onStatus: (s) => statuses.push(s.kind),
        onMessage: (m) => {
          got.push(`${m.lastEventId}:${JSON.parse(m.data).message}`);
          if (got.length === 10) controller.abort();
        },
      });
      await withTimeout(following, 10_000);
    } finally {
      await server.close();
    }
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `${i + 1}:line ${i + 1}`));
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0]!.lastEventId, undefined);
    assert.equal(server.requests[1]!.lastEventId, '4');
    assert.equal(server.requests[1]!.auth, 'Bearer t0k');
    assert.equal(server.requests[0]!.accept, 'text/event-stream');
    assert.ok(statuses.includes('dropped'));
    assert.equal(statuses.at(-1), 'closed');
  });

  it('Sends_the_initial_last_event_id_on_the_first_request', async () => {
    const server = await startEventServer(6, 0);
    const controller = new AbortController();
    const ids: string[] = [];
    try {
      await withTimeout(
        followSse({
          url: server.url,
          lastEventId: '3',
          signal: controller.signal,
          onMessage: (m) => {
            ids.push(m.lastEventId);
            if (m.lastEventId === '6') controller.abort();
          },
        }),
        10_000,
      );
    } finally {
      await server.close();
    }
    assert.deepEqual(ids, ['4', '5', '6']);
    assert.equal(server.requests[0]!.lastEventId, '3');
  });

  it('Stops_with_a_fatal_error_on_401_instead_of_retrying', async () => {
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.writeHead(401, { 'Content-Type': 'application/problem+json' });
      res.end('{"title":"Unauthorized"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      await assert.rejects(
        withTimeout(followSse({ url: `http://127.0.0.1:${port}/`, onMessage: () => {}, initialDelayMs: 10 }), 5_000),
        (e: unknown) => e instanceof SseFatalError && e.status === 401,
      );
    } finally {
      server.close();
    }
    assert.equal(hits, 1);
  });

  it('Keeps_retrying_while_the_server_is_down_and_gives_up_after_max_attempts', async () => {
    // A port with nothing listening: connection refused every time.
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const statuses: FollowStatus[] = [];
    await assert.rejects(
      withTimeout(
        followSse({ url: `http://127.0.0.1:${port}/`, onMessage: () => {}, initialDelayMs: 5, maxAttempts: 3, onStatus: (s) => statuses.push(s) }),
        5_000,
      ),
      /Gave up/,
    );
    assert.equal(statuses.filter((s) => s.kind === 'connecting').length, 3);
  });
});

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
