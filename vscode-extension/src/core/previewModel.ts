// What the preview panel shows, derived from the project snapshot, its live events, the runner's presence and
// whether the preview answers. Mirrors Web's projector so the panel and the web UI diagnose the same way.
import type { DevServer, Project, Runner, Todo } from './api';
import { currentTodo, type ProjectEvent } from './events';
import { isAcceptablePreviewUrl } from './previewUrls';

export const KEPT_LOG_LINES = 30;

export interface BuildBanner {
  todo?: string;
  done: number;
  total: number;
  activity?: string;
}

/** One state per thing the user can see or do; `kind` drives the webview. */
export type PreviewView =
  | { kind: 'loading' }
  | { kind: 'api-error'; message: string }
  | { kind: 'runner-offline'; runnerName?: string; lastSeenAt?: string; projectStatus: string }
  | { kind: 'pending'; reason?: string }
  | ({ kind: 'building' } & BuildBanner)
  | { kind: 'installing'; lastLine?: string }
  | { kind: 'starting'; phase?: string; lastLine?: string }
  | { kind: 'running'; previewUrl: string; port?: number; building?: BuildBanner }
  | { kind: 'unreachable'; previewUrl: string; error: string }
  /** The runner reported a preview address outside the rule of previewUrls.ts: never framed, opened or probed. */
  | { kind: 'refused'; previewUrl: string }
  | { kind: 'crashed'; exitCode?: number; reason?: string; lastLines: string[] }
  | { kind: 'stopped' }
  | { kind: 'failed'; reason?: string }
  | { kind: 'cancelled'; reason?: string };

export type PreviewKind = PreviewView['kind'];

export type Reachability = { ok: true } | { ok: false; error: string };

interface DevState {
  status: string;
  port?: number;
  previewUrl?: string;
  reason?: string;
  exitCode?: number;
  lastLines: string[];
}

export class PreviewModel {
  private loaded = false;
  private status = 'pending';
  private statusReason?: string;
  private todos: Todo[] = [];
  private dev: DevState = { status: 'stopped', lastLines: [] };
  private activity?: string;
  private runner?: Runner;
  private runnerKnown = false;
  private reachability?: Reachability;
  private apiError?: string;
  /** Highest event sequence applied; events at or below it are replays and ignored. */
  lastSeq = 0;
  runnerId?: string;
  name?: string;
  slug?: string;
  /** The configured preview domain (apphost.json or the `sentryvibe.previewDomain` setting): relay URLs under it are accepted. */
  relayDomain?: string;

  /** Replace everything with a fresh GET /api/projects/{id}. */
  applySnapshot(p: Project): void {
    this.loaded = true;
    this.apiError = undefined;
    this.name = p.name ?? p.slug;
    this.slug = p.slug;
    this.runnerId = p.runnerId ?? undefined;
    this.status = p.status;
    this.statusReason = p.statusReason ?? undefined;
    this.todos = [...(p.todos ?? [])];
    this.dev = fromDevServer(p.devServer);
    if (typeof p.lastEventId === 'number') this.lastSeq = Math.max(this.lastSeq, p.lastEventId);
  }

  /** Returns false for an event already applied (a replay after reconnecting). */
  applyEvent(e: ProjectEvent): boolean {
    if (e.seq !== undefined) {
      if (e.seq <= this.lastSeq) return false;
      this.lastSeq = e.seq;
    }
    switch (e.type) {
      case 'build-queued':
        this.status = 'pending';
        this.statusReason = `Waiting for a free build slot (position ${e.position ?? '?'}).`;
        break;
      case 'build-started':
        this.status = 'building';
        this.statusReason = undefined;
        this.activity = undefined;
        break;
      case 'todos-updated':
        this.todos = [...e.todos];
        break;
      case 'tool-use':
        this.activity = `${e.name}${e.inputSummary ? ` ${e.inputSummary}` : ''}`;
        break;
      case 'agent-message':
        this.activity = firstLine(e.text);
        break;
      case 'build-log':
        this.activity = firstLine(e.message);
        break;
      case 'build-completed':
        this.status = 'ready';
        this.statusReason = undefined;
        this.activity = undefined;
        break;
      case 'build-failed':
        this.status = 'failed';
        this.statusReason = e.reason;
        break;
      case 'build-cancelled':
        this.status = 'cancelled';
        this.statusReason = e.reason ?? 'Cancelled by the user.';
        break;
      case 'command-failed':
        if (e.commandType === 'start-build' || e.commandType === 'follow-up') this.status = 'failed';
        this.statusReason = e.reason;
        break;
      case 'project-metadata':
        if (typeof e.port === 'number' && this.dev.port === undefined) this.dev = { ...this.dev, port: e.port };
        break;
      case 'dev-server-starting':
        this.dev = { status: 'starting', port: e.port ?? undefined, reason: e.phase ?? undefined, lastLines: [] };
        this.reachability = undefined;
        break;
      case 'dev-server-log':
        this.dev = { ...this.dev, lastLines: [...this.dev.lastLines, e.line].slice(-KEPT_LOG_LINES) };
        break;
      case 'port-detected':
        this.dev = { ...this.dev, status: 'running', port: e.port, previewUrl: e.previewUrl, reason: undefined, exitCode: undefined };
        this.reachability = undefined;
        break;
      case 'dev-server-exited': {
        const stopped = e.reason === 'stopped';
        this.dev = {
          ...this.dev,
          status: stopped ? 'stopped' : 'failed',
          exitCode: e.exitCode ?? undefined,
          reason: e.reason ?? undefined,
          lastLines: (e.lastLines ?? this.dev.lastLines).slice(-KEPT_LOG_LINES),
          previewUrl: stopped ? undefined : this.dev.previewUrl,
        };
        this.reachability = undefined;
        break;
      }
      default:
        break;
    }
    return true;
  }

  setRunners(runners: readonly Runner[]): void {
    this.runnerKnown = true;
    this.runner = this.runnerId ? runners.find((r) => r.id === this.runnerId) : undefined;
    // A project not yet bound to a runner waits for any online one.
    if (!this.runnerId) this.runner = runners.find((r) => r.status === 'online') ?? runners[0];
  }

  setReachability(r: Reachability | undefined): void {
    this.reachability = r;
  }

  setApiError(message: string | undefined): void {
    this.apiError = message;
  }

  /** The running preview's address, only when it passes the preview URL rule: safe to probe, frame and open. */
  get previewUrl(): string | undefined {
    const url = this.dev.status === 'running' ? this.dev.previewUrl : undefined;
    return url && isAcceptablePreviewUrl(url, this.relayDomain) ? url : undefined;
  }

  get projectStatus(): string {
    return this.status;
  }

  get devServerStatus(): string {
    return this.dev.status;
  }

  /** The one line a status bar or notification shows. */
  get summary(): string {
    const v = this.view();
    switch (v.kind) {
      case 'building':
        return v.todo ? `building: ${v.todo} (${v.done}/${v.total})` : 'building';
      case 'running':
        return v.building ? `building: ${v.building.todo ?? '…'}` : 'running';
      case 'runner-offline':
        return 'runner offline';
      case 'api-error':
        return 'unreachable';
      default:
        return v.kind;
    }
  }

  view(): PreviewView {
    if (this.apiError) return { kind: 'api-error', message: this.apiError };
    if (!this.loaded) return { kind: 'loading' };
    const runnerOffline = this.runnerKnown && (!this.runner || this.runner.status !== 'online');
    const building = this.status === 'building' ? this.banner() : undefined;

    if (this.dev.status === 'running' && this.dev.previewUrl) {
      if (!isAcceptablePreviewUrl(this.dev.previewUrl, this.relayDomain)) return { kind: 'refused', previewUrl: this.dev.previewUrl };
      if (runnerOffline) return this.offline();
      if (this.reachability && !this.reachability.ok) {
        return { kind: 'unreachable', previewUrl: this.dev.previewUrl, error: this.reachability.error };
      }
      return { kind: 'running', previewUrl: this.dev.previewUrl, port: this.dev.port, building };
    }
    if (runnerOffline && (this.status === 'pending' || this.status === 'building' || this.status === 'ready')) {
      return this.offline();
    }
    if (this.status === 'pending') return { kind: 'pending', reason: this.statusReason };
    if (building) return { kind: 'building', ...building };
    if (this.status === 'failed') return { kind: 'failed', reason: this.statusReason };
    if (this.status === 'cancelled') return { kind: 'cancelled', reason: this.statusReason };
    if (this.dev.status === 'starting') {
      const lastLine = this.dev.lastLines.at(-1);
      if (this.dev.reason && /install/i.test(this.dev.reason)) return { kind: 'installing', lastLine };
      return { kind: 'starting', phase: this.dev.reason, lastLine };
    }
    if (this.dev.status === 'failed') {
      return { kind: 'crashed', exitCode: this.dev.exitCode, reason: this.dev.reason, lastLines: this.dev.lastLines };
    }
    return { kind: 'stopped' };
  }

  private banner(): BuildBanner {
    const todo = currentTodo(this.todos);
    return {
      todo: todo ? (todo.status === 'in_progress' && todo.activeForm ? todo.activeForm : todo.content) : undefined,
      done: this.todos.filter((t) => t.status === 'completed').length,
      total: this.todos.length,
      activity: this.activity,
    };
  }

  private offline(): PreviewView {
    return {
      kind: 'runner-offline',
      runnerName: this.runner?.name ?? this.runner?.id ?? this.runnerId,
      lastSeenAt: this.runner?.lastSeenAt ?? undefined,
      projectStatus: this.status,
    };
  }
}

function fromDevServer(d: DevServer | null | undefined): DevState {
  if (!d) return { status: 'stopped', lastLines: [] };
  return {
    status: d.status,
    port: d.port ?? undefined,
    previewUrl: d.previewUrl ?? undefined,
    reason: d.reason ?? undefined,
    exitCode: d.exitCode ?? undefined,
    lastLines: [...(d.lastLines ?? [])],
  };
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/).find((l) => l.trim()) ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}…` : line;
}
