// One live view of a project: snapshot + event stream folded into a PreviewModel, refreshed after the events
// that the snapshot describes better (status, dev server). Shared by the progress notification, the output
// channel and the preview panel so a project has one SSE connection.
import type { Project } from './api';
import type { SentryVibeClient } from './client';
import { ApiError, UnreachableError } from './client';
import type { ProjectEvent } from './events';
import { PreviewModel } from './previewModel';
import type { FollowStatus } from './sse';

export interface FeedListener {
  onEvent?(event: ProjectEvent, model: PreviewModel): void;
  onChange?(model: PreviewModel): void;
  onStatus?(status: FollowStatus): void;
}

const REFRESH_ON = new Set<ProjectEvent['type']>([
  'build-completed', 'build-failed', 'build-cancelled', 'port-detected', 'dev-server-exited', 'project-metadata', 'command-failed',
]);

export class ProjectFeed {
  readonly model = new PreviewModel();
  project?: Project;
  private readonly listeners = new Set<FeedListener>();
  private abort?: AbortController;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private running?: Promise<void>;
  private streamSeq = 0;

  constructor(
    readonly projectId: string,
    private readonly client: () => Promise<SentryVibeClient>,
    /** 'start' replays the whole log (a new project); 'now' continues from the snapshot. */
    private readonly from: 'start' | 'now' = 'now',
  ) {}

  subscribe(listener: FeedListener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Loads the snapshot and starts following; resolves once the snapshot is in. */
  async start(initial?: Project): Promise<void> {
    if (this.abort) return;
    this.abort = new AbortController();
    let after = 0;
    if (this.from === 'now') {
      await this.refresh();
      after = this.model.lastSeq;
      if (after === 0) after = await this.lastStoredSeq();
      this.model.lastSeq = after;
      this.streamSeq = after;
    } else if (initial) {
      this.project = initial;
      this.model.applySnapshot({ ...initial, lastEventId: 0 });
      this.model.lastSeq = 0;
      this.emitChange();
    }
    const signal = this.abort.signal;
    this.running = this.client()
      .then((c) =>
        c.followEvents(this.projectId, {
          after,
          signal,
          onEvent: (e) => this.onEvent(e),
          onStatus: (s) => {
            for (const l of this.listeners) l.onStatus?.(s);
            // After a reconnect the snapshot may have moved on beyond what the replay tells.
            if (s.kind === 'open' && this.project) this.scheduleRefresh(200);
          },
        }),
      )
      .catch((e: unknown) => {
        this.model.setApiError(e instanceof Error ? e.message : String(e));
        this.emitChange();
      });
  }

  async refresh(): Promise<void> {
    try {
      const client = await this.client();
      const p = await client.getProject(this.projectId);
      this.project = p;
      const seq = this.model.lastSeq;
      this.model.applySnapshot(p);
      // A snapshot never moves the event cursor backwards.
      this.model.lastSeq = Math.max(seq, this.model.lastSeq);
    } catch (e) {
      // A blip while following (Web restarting) is not worth an error state: the stream reconnects and the
      // next refresh catches up. Before the first snapshot there is nothing else to show.
      if (e instanceof UnreachableError && this.project) return;
      this.model.setApiError(e instanceof ApiError && e.status === 404 ? 'This project no longer exists.' : (e as Error).message);
    }
    this.emitChange();
  }

  emitChange(): void {
    for (const l of this.listeners) l.onChange?.(this.model);
  }

  dispose(): void {
    this.abort?.abort();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.listeners.clear();
  }

  /** Resolves when following has stopped (after dispose). */
  get done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private onEvent(e: ProjectEvent): void {
    // Two cursors: the stream's (each event reaches listeners once, even across reconnects) and the model's
    // (a snapshot may already include an event that the stream delivers later; it must not be applied twice).
    if (e.seq !== undefined) {
      if (e.seq <= this.streamSeq) return;
      this.streamSeq = e.seq;
    }
    const applied = this.model.applyEvent(e);
    for (const l of this.listeners) l.onEvent?.(e, this.model);
    if (applied) this.emitChange();
    if (applied && REFRESH_ON.has(e.type)) this.scheduleRefresh(300);
  }

  private scheduleRefresh(ms: number): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (!this.abort?.signal.aborted) void this.refresh();
    }, ms);
  }

  private async lastStoredSeq(): Promise<number> {
    try {
      const events = await (await this.client()).listEvents(this.projectId, 0);
      return events.reduce((max, e) => Math.max(max, e.seq ?? 0), 0);
    } catch {
      return 0;
    }
  }
}
