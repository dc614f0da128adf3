// Typed project events from the SSE stream, and how each one reads as a line of progress.
import type { Todo } from './api';
import type { SseMessage } from './sse';
import { shownPreviewUrl } from './previewUrls';

interface Base {
  /** The event sequence (SSE `id:`), when known. */
  seq?: number;
  timestamp?: string;
}

export type ProjectEvent = Base &
  (
    | { type: 'build-started'; prompt?: string; templateId?: string; agent?: string; turn?: number; reason?: string | null }
    | { type: 'build-queued'; position?: number }
    | { type: 'user-message'; prompt: string }
    | { type: 'agent-message'; text: string }
    | { type: 'tool-use'; toolUseId: string; name: string; inputSummary?: string; status?: string; resultSummary?: string | null }
    | { type: 'todos-updated'; todos: Todo[] }
    | { type: 'build-log'; message: string; level?: string }
    | { type: 'project-metadata'; framework?: string | null; runCommand?: string | null; port?: number | null; path?: string | null }
    | { type: 'checkpoint-created'; checkpointId?: string; message?: string }
    | { type: 'build-completed'; turns?: number; durationMs?: number; costUsd?: number }
    | { type: 'build-failed'; reason?: string }
    | { type: 'build-cancelled'; reason?: string | null }
    | { type: 'dev-server-starting'; command?: string; port?: number | null; phase?: string | null }
    | { type: 'dev-server-log'; line: string; stream?: string }
    | { type: 'port-detected'; port: number; previewUrl: string; provider?: string }
    | { type: 'dev-server-exited'; exitCode?: number | null; lastLines?: string[]; reason?: string | null }
    | { type: 'project-deleted' }
    | { type: 'command-failed'; commandType?: string; reason?: string }
    | { type: 'unknown'; originalType: string; raw: Record<string, unknown> }
  );

export type ProjectEventType = ProjectEvent['type'];

const KNOWN = new Set<string>([
  'build-started', 'build-queued', 'user-message', 'agent-message', 'tool-use', 'todos-updated', 'build-log',
  'project-metadata', 'checkpoint-created', 'build-completed', 'build-failed', 'build-cancelled',
  'dev-server-starting', 'dev-server-log', 'port-detected', 'dev-server-exited', 'project-deleted', 'command-failed',
]);

/**
 * Turns one SSE message into a typed event. The data is the event JSON with its kebab-case `type`; an
 * envelope (`{ id/seq, type, data|payload|body: {...} }`) is unwrapped too, so either server shape works.
 * Returns undefined for data that is not a JSON object (a keep-alive, say).
 */
export function parseEventMessage(message: SseMessage): ProjectEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(message.data);
  } catch {
    return undefined;
  }
  return normalizeEvent(json, message.event !== 'message' ? message.event : undefined, message.lastEventId);
}

export function normalizeEvent(json: unknown, sseEventName?: string, sseId?: string): ProjectEvent | undefined {
  if (!isObject(json)) return undefined;
  let body: Record<string, unknown> = json;
  for (const key of ['payload', 'body', 'data']) {
    const inner = json[key];
    if (isObject(inner)) {
      body = { ...inner, ...pick(json, ['type', 'seq', 'id', 'timestamp']) };
      if (typeof inner.type === 'string') body.type = inner.type;
      break;
    }
  }
  const type = typeof body.type === 'string' ? body.type : sseEventName;
  if (!type) return undefined;
  const seqSource = sseId !== undefined && sseId !== '' ? sseId : (json.seq ?? json.id);
  const seq = seqSource === undefined ? undefined : Number(seqSource);
  const base: Base = {
    seq: Number.isFinite(seq) ? seq : undefined,
    timestamp: typeof body.timestamp === 'string' ? body.timestamp : undefined,
  };
  if (!KNOWN.has(type)) return { ...base, type: 'unknown', originalType: type, raw: body };
  return { ...body, ...base, type } as ProjectEvent;
}

/** One line for the output channel, or undefined for events that would only add noise. */
/** `relayDomain`: the configured preview domain, for the preview URL rule (a refused address is not printed). */
export function describeEvent(e: ProjectEvent, relayDomain?: string): string | undefined {
  switch (e.type) {
    case 'build-started':
      return `▶ Build started${e.turn && e.turn > 1 ? ` (turn ${e.turn})` : ''}${e.templateId ? ` · template ${e.templateId}` : ''}${e.agent ? ` · agent ${e.agent}` : ''}${e.reason ? ` · ${e.reason}` : ''}`;
    case 'build-queued':
      return `… Waiting for a free build slot (position ${e.position ?? '?'})`;
    case 'user-message':
      return `> ${e.prompt}`;
    case 'agent-message':
      return e.text;
    case 'tool-use': {
      const mark = e.status === 'failed' ? '✗' : e.status === 'succeeded' ? '✓' : '⚙';
      const result = e.resultSummary ? ` → ${e.resultSummary}` : '';
      return `${mark} ${e.name}${e.inputSummary ? ` ${e.inputSummary}` : ''}${result}`;
    }
    case 'todos-updated':
      return ['Todos:', ...e.todos.map((t) => `  ${todoMark(t.status)} ${t.content}`)].join('\n');
    case 'build-log':
      return `${e.level && e.level !== 'info' ? `[${e.level}] ` : ''}${e.message}`;
    case 'project-metadata':
      return [e.framework && `framework ${e.framework}`, e.runCommand && `run: ${e.runCommand}`, e.path && `path: ${e.path}`]
        .filter(Boolean)
        .join(' · ') || undefined;
    case 'checkpoint-created':
      return `⎇ Checkpoint${e.message ? `: ${e.message}` : ''}`;
    case 'build-completed':
      return `✔ Build completed${e.turns !== undefined ? ` in ${e.turns} turn${e.turns === 1 ? '' : 's'}` : ''}${e.durationMs !== undefined ? `, ${(e.durationMs / 1000).toFixed(1)} s` : ''}${e.costUsd !== undefined ? `, $${Number(e.costUsd).toFixed(4)}` : ''}`;
    case 'build-failed':
      return `✘ Build failed: ${e.reason ?? 'no reason given'}`;
    case 'build-cancelled':
      return `■ Build cancelled${e.reason ? `: ${e.reason}` : ''}`;
    case 'dev-server-starting':
      return `▶ Dev server ${e.phase ?? 'starting'}${e.command ? `: ${e.command}` : ''}`;
    case 'dev-server-log':
      return `  │ ${e.line}`;
    case 'port-detected':
      return `🌐 Preview at ${shownPreviewUrl(e.previewUrl, relayDomain)} (port ${e.port})`;
    case 'dev-server-exited':
      return `✘ Dev server exited${e.exitCode !== undefined && e.exitCode !== null ? ` with code ${e.exitCode}` : ''}${e.reason ? `: ${e.reason}` : ''}`;
    case 'project-deleted':
      return 'Project deleted';
    case 'command-failed':
      return `✘ ${e.commandType ?? 'Command'} failed: ${e.reason ?? ''}`;
    case 'unknown':
      return undefined;
  }
}

export function todoMark(status: string): string {
  return status === 'completed' ? '☑' : status === 'in_progress' ? '◐' : '☐';
}

/** The todo being worked on: the first in progress, else the first pending. */
export function currentTodo(todos: readonly Todo[] | null | undefined): Todo | undefined {
  if (!todos) return undefined;
  return todos.find((t) => t.status === 'in_progress') ?? todos.find((t) => t.status === 'pending');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) r[k] = o[k];
  return r;
}
