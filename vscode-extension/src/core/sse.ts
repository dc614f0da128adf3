// Server-sent events: an incremental parser (WHATWG rules) and a follower that reconnects with
// Last-Event-ID and backoff. No vscode import, so node's test runner covers it.

export interface SseMessage {
  /** The `event:` field, "message" when absent. */
  event: string;
  data: string;
  /** The last event id seen on the stream so far (carried over from earlier messages, as browsers do). */
  lastEventId: string;
}

export interface SseParserHandlers {
  onMessage(message: SseMessage): void;
  onRetry?(ms: number): void;
  onComment?(text: string): void;
}

/**
 * Feed it text chunks as they arrive; it calls back once per complete event. Chunk boundaries may fall
 * anywhere, including between the CR and LF of a CRLF pair.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private hasData = false;
  private eventType = '';
  private lastId = '';
  private pendingCr = false;
  private first = true;

  constructor(private readonly handlers: SseParserHandlers, initialLastEventId = '') {
    this.lastId = initialLastEventId;
  }

  get lastEventId(): string {
    return this.lastId;
  }

  push(chunk: string): void {
    if (this.first && chunk.length > 0) {
      this.first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    let text = chunk;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    let start = 0;
    const all = this.buffer + text;
    this.buffer = '';
    for (let i = 0; i < all.length; i++) {
      const c = all.charCodeAt(i);
      if (c === 13 /* \r */ || c === 10 /* \n */) {
        this.line(all.slice(start, i));
        if (c === 13) {
          if (i + 1 < all.length) {
            if (all.charCodeAt(i + 1) === 10) i++;
          } else {
            this.pendingCr = true;
          }
        }
        start = i + 1;
      }
    }
    this.buffer = all.slice(start);
  }

  /** End of stream: an event without its terminating blank line is discarded, per spec. */
  end(): void {
    this.buffer = '';
    this.resetEvent();
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.handlers.onComment?.(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.onRetry?.(Number(value));
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    if (!this.hasData) {
      this.resetEvent();
      return;
    }
    const message: SseMessage = {
      event: this.eventType || 'message',
      data: this.data.join('\n'),
      lastEventId: this.lastId,
    };
    this.resetEvent();
    this.handlers.onMessage(message);
  }

  private resetEvent(): void {
    this.data = [];
    this.hasData = false;
    this.eventType = '';
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface FollowOptions {
  url: string;
  headers?: Record<string, string>;
  /** Resume point for the first connection (sent as Last-Event-ID). */
  lastEventId?: string;
  onMessage(message: SseMessage): void;
  /** Connection state changes, for status lines ("reconnecting in 2 s"). */
  onStatus?(status: FollowStatus): void;
  signal?: AbortSignal;
  fetch?: FetchLike;
  /** First reconnect delay; doubles up to maxDelayMs. A server `retry:` replaces the base. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
  /** Random source for jitter; tests pass a constant. */
  random?: () => number;
}

export type FollowStatus =
  | { kind: 'connecting'; attempt: number; lastEventId: string }
  | { kind: 'open' }
  | { kind: 'dropped'; error?: string; retryInMs: number; attempt: number }
  | { kind: 'closed'; reason: 'aborted' | 'fatal' | 'gave-up'; error?: string; status?: number };

/** An HTTP answer that reconnecting cannot fix (401, 403, 404, wrong content type). */
export class SseFatalError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'SseFatalError';
  }
}

/**
 * Follows an SSE endpoint until aborted: reconnects after drops with jittered exponential backoff and
 * resumes with Last-Event-ID so no event is lost or repeated. Resolves when aborted; rejects with
 * SseFatalError on an answer that retrying cannot fix.
 */
export async function followSse(options: FollowOptions): Promise<void> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 15_000;
  const random = options.random ?? Math.random;
  let base = initial;
  let lastEventId = options.lastEventId ?? '';
  let failures = 0;
  let attempt = 0;

  while (!options.signal?.aborted) {
    attempt++;
    options.onStatus?.({ kind: 'connecting', attempt, lastEventId });
    let receivedAny = false;
    let error: string | undefined;
    try {
      const headers: Record<string, string> = {
        Accept: 'text/event-stream',
        'Cache-Control': 'no-cache',
        ...options.headers,
      };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const response = await doFetch(options.url, { headers, signal: options.signal });
      if (response.status === 204) {
        options.onStatus?.({ kind: 'closed', reason: 'fatal', status: 204, error: 'The server ended the stream (204).' });
        return;
      }
      if (!response.ok) {
        const body = await response.text().catch(() => '');
        const message = `HTTP ${response.status} from ${options.url}${body ? `: ${body.slice(0, 300)}` : ''}`;
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
          throw new SseFatalError(message, response.status);
        }
        throw new Error(message);
      }
      const type = response.headers.get('content-type') ?? '';
      if (!type.toLowerCase().startsWith('text/event-stream')) {
        throw new SseFatalError(`Expected text/event-stream from ${options.url}, got '${type}'.`, response.status);
      }
      if (!response.body) throw new Error('The response has no body.');
      options.onStatus?.({ kind: 'open' });
      const parser = new SseParser(
        {
          onMessage: (m) => {
            receivedAny = true;
            lastEventId = m.lastEventId;
            options.onMessage(m);
          },
          onRetry: (ms) => {
            base = Math.max(ms, 0);
          },
        },
        lastEventId,
      );
      const decoder = new TextDecoder('utf-8');
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
      parser.push(decoder.decode());
      parser.end();
      // An id-only block (no data) still moves the resume point.
      if (parser.lastEventId) lastEventId = parser.lastEventId;
      error = 'The server closed the stream.';
    } catch (e) {
      if (options.signal?.aborted) break;
      if (e instanceof SseFatalError) {
        options.onStatus?.({ kind: 'closed', reason: 'fatal', error: e.message, status: e.status });
        throw e;
      }
      error = e instanceof Error ? e.message : String(e);
    }
    if (options.signal?.aborted) break;
    failures = receivedAny ? 1 : failures + 1;
    if (options.maxAttempts !== undefined && failures >= options.maxAttempts && !receivedAny) {
      options.onStatus?.({ kind: 'closed', reason: 'gave-up', error });
      throw new Error(`Gave up on ${options.url} after ${failures} attempts: ${error ?? 'unknown error'}`);
    }
    const delay = backoffDelay(base, max, failures, random);
    options.onStatus?.({ kind: 'dropped', error, retryInMs: delay, attempt });
    await sleep(delay, options.signal);
  }
  options.onStatus?.({ kind: 'closed', reason: 'aborted' });
}

/** base·2^(n-1), capped, with ±20 % jitter so many clients do not reconnect in step. */
export function backoffDelay(baseMs: number, maxMs: number, failures: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  const jitter = 0.8 + random() * 0.4;
  return Math.round(Math.min(maxMs, exp * jitter));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
