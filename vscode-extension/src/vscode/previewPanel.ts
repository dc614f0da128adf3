// The preview webview: one panel per project, the app in an iframe once it runs, and the diagnosing states
// (building, installing, starting, crashed, runner offline, unreachable) before that.
import * as vscode from 'vscode';
import { isFromWebview, type FromWebview, type ToWebview } from '../core/messages';
import { buildPreviewHtml, originOf } from '../core/previewHtml';
import type { ProjectFeed } from '../core/projectFeed';
import type { PreviewModel, PreviewView } from '../core/previewModel';
import { ProbeRuns, probeUrl } from '../core/probe';
import { isAcceptablePreviewUrl, isFramableUrl, REFUSED_PREVIEW_TEXT } from '../core/previewUrls';
import type { ConnectionManager } from './connection';
import type { FeedRegistry } from './feeds';
import type { RunnerManager } from './runner';

export class PreviewPanels implements vscode.Disposable {
  private readonly panels = new Map<string, PreviewPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly connection: ConnectionManager,
    private readonly feeds: FeedRegistry,
    private readonly runners: RunnerManager,
  ) {}

  async open(projectId: string, title: string): Promise<void> {
    const existing = this.panels.get(projectId);
    if (existing) {
      existing.reveal();
      return;
    }
    const panel = new PreviewPanel(this.extensionUri, projectId, title, this.connection, this.feeds, this.runners, () =>
      this.panels.delete(projectId),
    );
    this.panels.set(projectId, panel);
    await panel.start();
  }

  dispose(): void {
    for (const p of this.panels.values()) p.dispose();
    this.panels.clear();
  }
}

class PreviewPanel {
  private readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  private feedUse?: { feed: ProjectFeed; dispose(): void };
  private model?: PreviewModel;
  private frameUrl?: string;
  private frameOrigin?: string;
  private resolvedFor?: string;
  private readonly probes = new ProbeRuns();
  private reprobe?: ReturnType<typeof setTimeout>;
  private webviewReady = false;
  private disposed = false;
  /** The configured preview domain; relay URLs under it pass the preview URL rule. */
  private relayDomain?: string;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly projectId: string,
    private title: string,
    private readonly connection: ConnectionManager,
    private readonly feeds: FeedRegistry,
    private readonly runners: RunnerManager,
    private readonly onDispose: () => void,
  ) {
    const media = vscode.Uri.joinPath(extensionUri, 'media');
    const dist = vscode.Uri.joinPath(extensionUri, 'dist', 'webview');
    this.panel = vscode.window.createWebviewPanel('sentryvibe.preview', `Preview: ${title}`, vscode.ViewColumn.Beside, {
      enableScripts: true,
      localResourceRoots: [media, dist],
      // The app in the iframe keeps its state (forms, HMR socket) while the tab is in the background.
      retainContextWhenHidden: true,
    });
    this.panel.iconPath = vscode.Uri.joinPath(media, 'sentryvibe.svg');
    this.setHtml();
    this.panel.onDidDispose(() => this.dispose(), null, this.disposables);
    // Typed messages only; anything else (unknown type, extra fields) is ignored.
    this.panel.webview.onDidReceiveMessage((m: unknown) => {
      if (isFromWebview(m)) void this.onMessage(m);
    }, null, this.disposables);
    this.disposables.push(this.connection.onDidChange(() => void this.loadRelayDomain().then(() => this.update())));
    this.disposables.push(this.runners.onDidChange((runners) => {
      if (!this.model || !this.runners.known) return;
      this.model.setRunners(runners);
      void this.update();
    }));
  }

  reveal(): void {
    this.panel.reveal();
  }

  private async loadRelayDomain(): Promise<void> {
    this.relayDomain = await this.connection.connection().then((c) => c.previewDomain, () => undefined);
    if (this.model) this.model.relayDomain = this.relayDomain;
  }

  async start(): Promise<void> {
    await this.loadRelayDomain();
    this.feedUse = await this.feeds.acquire(this.projectId, {
      onChange: (m) => {
        this.model = m;
        m.relayDomain = this.relayDomain;
        if (this.runners.known) m.setRunners(this.runners.runners);
        void this.update();
      },
    });
  }

  private setHtml(): void {
    const webview = this.panel.webview;
    const { html } = buildPreviewHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', 'preview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'preview.css')).toString(),
      frameOrigin: this.frameOrigin,
      title: this.title,
    });
    this.webviewReady = false;
    webview.html = html;
  }

  private async update(): Promise<void> {
    if (this.disposed || !this.model) return;
    const model = this.model;
    if (model.name && model.name !== this.title) {
      this.title = model.name;
      this.panel.title = `Preview: ${this.title}`;
    }
    // model.previewUrl is set only for an address that passes the preview URL rule; a refused one is never resolved,
    // probed or framed (the view says "refused").
    const previewUrl = model.previewUrl;
    if (previewUrl && previewUrl !== this.resolvedFor) {
      this.resolvedFor = previewUrl;
      // Remote windows and Codespaces: asExternalUri forwards the port and may change the origin.
      const external = await vscode.env.asExternalUri(vscode.Uri.parse(previewUrl));
      const resolved = external.toString(true);
      this.frameUrl = isFramableUrl(resolved) ? resolved : undefined;
      const origin = originOf(this.frameUrl);
      if (origin !== this.frameOrigin) {
        // The CSP names the one origin the iframe may load, so a new origin needs new HTML.
        this.frameOrigin = origin;
        this.setHtml();
      }
      this.probes.next();
      void this.probe(previewUrl);
    }
    this.post({ type: 'state', view: model.view(), title: this.title, frameUrl: previewUrl ? this.frameUrl : undefined, relayDomain: this.relayDomain });
    if (!previewUrl) this.resolvedFor = undefined;
  }

  private async probe(url: string): Promise<void> {
    if (!this.model) return;
    const run = this.probes.begin();
    if (run === undefined) return;
    if (this.reprobe) clearTimeout(this.reprobe);
    const result = await probeUrl(url);
    // A probe still out when its run of the dev server ended says nothing about the next run.
    if (this.probes.end(run) && this.model.previewUrl === url) {
      this.model.setReachability(result);
      void this.update();
      // Keep trying while it does not answer, so the panel recovers by itself (relay back, server restarted).
      if (!result.ok) this.reprobe = setTimeout(() => !this.disposed && void this.probe(url), 5_000);
    }
  }

  private post(message: ToWebview): void {
    if (this.webviewReady) void this.panel.webview.postMessage(message);
    else this.pending = message;
  }

  private pending?: ToWebview;

  private async onMessage(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.webviewReady = true;
        if (this.pending) {
          void this.panel.webview.postMessage(this.pending);
          this.pending = undefined;
        } else if (this.model) {
          void this.update();
        }
        break;
      case 'reload':
      case 'retry': {
        if (this.model?.previewUrl) {
          this.model.setReachability(undefined);
          void this.probe(this.model.previewUrl);
        }
        await this.feedUse?.feed.refresh();
        break;
      }
      case 'open-in-browser': {
        const url = this.model?.previewUrl;
        const view = this.model?.view();
        // The rule once more right before the browser opens it.
        if (url && isAcceptablePreviewUrl(url, this.relayDomain)) await vscode.env.openExternal(vscode.Uri.parse(url));
        else if (view?.kind === 'refused') void vscode.window.showWarningMessage(`${REFUSED_PREVIEW_TEXT}: it is not opened.`);
        else void vscode.window.showInformationMessage('The preview is not running yet.');
        break;
      }
      case 'restart-dev-server': {
        const client = await this.connection.clientOrExplain();
        if (!client) return;
        try {
          await client.startDevServer(this.projectId);
        } catch (e) {
          void vscode.window.showErrorMessage(`Could not start the dev server: ${(e as Error).message}`);
        }
        break;
      }
      case 'start-runner':
        await this.runners.startRunner();
        break;
      case 'show-output':
        this.feeds.output.show(true);
        break;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.reprobe) clearTimeout(this.reprobe);
    this.feedUse?.dispose();
    this.onDispose();
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }
}

export type { PreviewView };
