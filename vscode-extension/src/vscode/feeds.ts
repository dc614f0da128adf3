// Keeps one ProjectFeed per project while anything (progress, panel) uses it, and mirrors its events into
// the SentryVibe output channel.
import * as vscode from 'vscode';
import type { Project } from '../core/api';
import { describeEvent } from '../core/events';
import { ProjectFeed, type FeedListener } from '../core/projectFeed';
import type { ConnectionManager } from './connection';

export class FeedRegistry implements vscode.Disposable {
  private readonly feeds = new Map<string, { feed: ProjectFeed; users: number }>();

  constructor(private readonly connection: ConnectionManager, readonly output: vscode.OutputChannel) {}

  /** Uses (and starts, if new) the feed of a project; dispose the result to stop using it. */
  async acquire(projectId: string, listener: FeedListener, options: { fromStart?: Project } = {}): Promise<{ feed: ProjectFeed; dispose(): void }> {
    let entry = this.feeds.get(projectId);
    if (!entry) {
      const feed = new ProjectFeed(projectId, () => this.connection.client(), options.fromStart ? 'start' : 'now');
      // The preview URL rule needs the configured preview domain (relay URLs live under it).
      feed.model.relayDomain = await this.connection.connection().then((c) => c.previewDomain, () => undefined);
      entry = { feed, users: 0 };
      this.feeds.set(projectId, entry);
      feed.subscribe(this.outputListener(feed));
      const sub = feed.subscribe(listener);
      entry.users++;
      await feed.start(options.fromStart);
      return { feed, dispose: () => this.release(projectId, sub) };
    }
    entry.users++;
    const sub = entry.feed.subscribe(listener);
    listener.onChange?.(entry.feed.model);
    return { feed: entry.feed, dispose: () => this.release(projectId, sub) };
  }

  private release(projectId: string, sub: { dispose(): void }): void {
    sub.dispose();
    const entry = this.feeds.get(projectId);
    if (!entry) return;
    entry.users--;
    if (entry.users <= 0) {
      entry.feed.dispose();
      this.feeds.delete(projectId);
    }
  }

  private outputListener(feed: ProjectFeed): FeedListener {
    let lastStatus: string | undefined;
    return {
      onEvent: (e) => {
        const line = describeEvent(e, feed.model.relayDomain);
        if (line === undefined) return;
        const who = feed.model.slug ?? feed.projectId.slice(0, 8);
        for (const l of line.split('\n')) this.output.appendLine(`[${who}] ${l}`);
      },
      onStatus: (s) => {
        const who = feed.model.slug ?? feed.projectId.slice(0, 8);
        let text: string | undefined;
        if (s.kind === 'dropped') text = `event stream dropped (${s.error ?? 'no reason'}); reconnecting in ${(s.retryInMs / 1000).toFixed(1)} s`;
        else if (s.kind === 'open' && lastStatus === 'dropped') text = 'event stream resumed';
        else if (s.kind === 'closed' && s.reason !== 'aborted') text = `event stream closed: ${s.error ?? s.reason}`;
        lastStatus = s.kind;
        if (text) this.output.appendLine(`[${who}] ${text}`);
      },
    };
  }

  dispose(): void {
    for (const { feed } of this.feeds.values()) feed.dispose();
    this.feeds.clear();
  }
}
