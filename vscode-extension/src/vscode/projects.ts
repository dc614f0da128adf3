// The project commands: New Project, Follow-up Prompt, Open Preview, Show Projects, and following a build in
// a progress notification until its preview runs.
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { Project } from '../core/api';
import { ApiError, UnreachableError, type SentryVibeClient } from '../core/client';
import { currentTodo, type ProjectEvent } from '../core/events';
import type { PreviewModel } from '../core/previewModel';
import { shownPreviewUrl } from '../core/previewUrls';
import type { ConnectionManager } from './connection';
import type { FeedRegistry } from './feeds';
import type { PreviewPanels } from './previewPanel';
import { pickAgent, pickRunner, pickTemplate } from './projectPickers';
import type { RunnerManager } from './runner';

/** How long after the build ends the notification waits for the dev server before letting go. */
const DEV_SERVER_WAIT_MS = 180_000;

type Outcome = 'ready' | 'failed' | 'cancelled' | 'detached' | 'error';

/** What a command receives: a tree node, a project, an id, or nothing (then it asks). */
export type ProjectArg = { project: Project } | Project | string | undefined;

export class ProjectCommands {
  constructor(
    private readonly connection: ConnectionManager,
    private readonly runners: RunnerManager,
    private readonly feeds: FeedRegistry,
    private readonly panels: PreviewPanels,
    private readonly refreshTree: () => void,
  ) {}

  async newProject(): Promise<void> {
    const client = await this.connection.clientOrExplain();
    if (!client) return;
    const prompt = await vscode.window.showInputBox({
      title: 'SentryVibe: New Project (1/3)',
      prompt: 'Describe the app to build',
      placeHolder: 'Create a React todo app',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() ? undefined : 'Say what the app should do'),
    });
    if (!prompt) return;

    const template = await pickTemplate(client, this.connection, this.feeds.output);
    if (template === undefined) return;
    const agent = await pickAgent();
    if (!agent) return;
    if (!(await this.runners.ensureOnline('the build'))) return;
    const runnerId = await pickRunner(this.runners);
    if (runnerId === null) return;

    let project: Project;
    try {
      project = await client.createProject({ prompt: prompt.trim(), ...template, agent, runnerId });
    } catch (e) {
      await this.showApiError('Could not create the project', e);
      return;
    }
    this.refreshTree();
    this.feeds.output.appendLine(`[${project.slug}] > ${prompt.trim()}`);
    this.feeds.output.show(true);
    await this.follow(project, 'Building', { fromStart: true });
  }

  async followUp(arg: ProjectArg): Promise<void> {
    const client = await this.connection.clientOrExplain();
    if (!client) return;
    const project = await this.resolveProject(client, arg, 'Follow-up prompt for which project?');
    if (!project) return;
    const prompt = await vscode.window.showInputBox({
      title: `SentryVibe: Follow-up for ${project.name ?? project.slug}`,
      prompt: 'What should change?',
      placeHolder: 'Add a dark mode toggle',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() ? undefined : 'Say what to change'),
    });
    if (!prompt) return;
    if (!(await this.runners.ensureOnline('the follow-up'))) return;
    try {
      await client.sendMessage(project.id, prompt.trim());
    } catch (e) {
      await this.showApiError('Could not send the follow-up', e);
      return;
    }
    this.feeds.output.appendLine(`[${project.slug}] > ${prompt.trim()}`);
    await this.follow(project, 'Updating', {});
  }

  async openPreview(arg: ProjectArg): Promise<void> {
    const client = await this.connection.clientOrExplain();
    if (!client) return;
    const project = await this.resolveProject(client, arg, 'Preview which project?');
    if (!project) return;
    await this.panels.open(project.id, project.name ?? project.slug);
  }

  async openFolder(arg: ProjectArg): Promise<void> {
    const client = await this.connection.clientOrExplain();
    if (!client) return;
    const project = await this.resolveProject(client, arg, 'Open the folder of which project?');
    if (!project) return;
    const fresh = await client.getProject(project.id).catch(() => project);
    if (!fresh.path || !fs.existsSync(fresh.path)) {
      void vscode.window.showWarningMessage(
        fresh.path
          ? `${fresh.path} is not on this machine: the project was built by a runner elsewhere.`
          : 'The runner has not reported the project folder yet.',
      );
      return;
    }
    const choice = await vscode.window.showInformationMessage(`Open ${fresh.path}?`, 'New Window', 'Add to Workspace', 'This Window');
    const uri = vscode.Uri.file(fresh.path);
    if (choice === 'New Window') await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
    else if (choice === 'This Window') await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: false });
    else if (choice === 'Add to Workspace') {
      vscode.workspace.updateWorkspaceFolders(vscode.workspace.workspaceFolders?.length ?? 0, 0, { uri, name: fresh.name ?? fresh.slug });
    }
  }

  async restartDevServer(arg: ProjectArg): Promise<void> {
    const client = await this.connection.clientOrExplain();
    if (!client) return;
    const project = await this.resolveProject(client, arg, 'Restart the dev server of which project?');
    if (!project) return;
    try {
      await client.startDevServer(project.id);
      void vscode.window.setStatusBarMessage(`SentryVibe: starting the dev server of ${project.slug}…`, 5_000);
    } catch (e) {
      await this.showApiError('Could not start the dev server', e);
    }
  }

  /** Quick pick of all projects; the chosen one opens its preview. */
  async showProjects(): Promise<void> {
    const client = await this.connection.clientOrExplain();
    if (!client) return;
    await vscode.commands.executeCommand('sentryvibe.projects.focus').then(undefined, () => undefined);
    const project = await this.resolveProject(client, undefined, 'SentryVibe projects', true);
    if (!project) return;
    const action = await vscode.window.showQuickPick(
      [
        { label: '$(open-preview) Open Preview', id: 'preview' },
        { label: '$(comment-discussion) Follow-up Prompt', id: 'followUp' },
        { label: '$(debug-restart) Restart Dev Server', id: 'restart' },
        { label: '$(folder-opened) Open Project Folder', id: 'folder' },
      ],
      { title: project.name ?? project.slug },
    );
    if (action?.id === 'preview') await this.openPreview(project);
    else if (action?.id === 'followUp') await this.followUp(project);
    else if (action?.id === 'restart') await this.restartDevServer(project);
    else if (action?.id === 'folder') await this.openFolder(project);
  }

  /**
   * Shows a build in a notification (todos, tool uses) until it ends and the dev server is up or down, then
   * offers the preview and the folder.
   */
  private async follow(project: Project, verb: string, options: { fromStart?: boolean }): Promise<void> {
    const name = project.name ?? project.slug;
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `SentryVibe: ${verb} ${name}`, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          let reported = 0;
          let buildEnded = false;
          let endTimer: ReturnType<typeof setTimeout> | undefined;
          let use: { dispose(): void } | undefined;
          let finished = false;
          const finish = (outcome: Outcome, model?: PreviewModel, message?: string) => {
            if (finished) return;
            finished = true;
            if (endTimer) clearTimeout(endTimer);
            this.runners.setCurrentBuild(undefined);
            use?.dispose();
            resolve();
            this.refreshTree();
            void this.announce(project, outcome, model, message);
          };
          token.onCancellationRequested(() => finish('detached'));

          const onEvent = (e: ProjectEvent, model: PreviewModel) => {
            const message = progressMessage(e, model);
            if (message) {
              const todos = e.type === 'todos-updated' ? e.todos : undefined;
              let increment: number | undefined;
              if (todos && todos.length > 0) {
                const pct = Math.round((90 * todos.filter((t) => t.status === 'completed').length) / todos.length);
                increment = Math.max(0, pct - reported);
                reported += increment;
              }
              progress.report({ message, increment });
            }
            if (e.type === 'build-failed') finish('failed', model);
            else if (e.type === 'build-cancelled') finish('cancelled', model);
            else if (e.type === 'command-failed' && model.projectStatus === 'failed') finish('failed', model);
            else if (e.type === 'build-completed') {
              buildEnded = true;
              // A follow-up usually leaves a running dev server running (hot reload): done now.
              if (model.devServerStatus === 'running') return finish('ready', model);
              progress.report({ message: 'Build done; waiting for the dev server…', increment: Math.max(0, 95 - reported) });
              endTimer = setTimeout(() => finish('ready', model), DEV_SERVER_WAIT_MS);
            }
            if (buildEnded && (e.type === 'port-detected' || e.type === 'dev-server-exited')) finish('ready', model);
          };

          void this.feeds
            .acquire(
              project.id,
              {
                onEvent,
                onChange: (m) => {
                  this.runners.setCurrentBuild(`${project.slug}: ${m.summary}`);
                  const view = m.view();
                  if (view.kind === 'api-error') finish('error', m, view.message);
                },
              },
              { fromStart: options.fromStart ? project : undefined },
            )
            .then((u) => {
              use = u;
              if (finished) u.dispose();
            });
        }),
    );
  }

  private async announce(project: Project, outcome: Outcome, model?: PreviewModel, message?: string): Promise<void> {
    const name = project.name ?? project.slug;
    if (outcome === 'detached') return;
    if (outcome === 'error') {
      const choice = await vscode.window.showErrorMessage(`${name}: lost the build's event stream: ${message ?? 'unknown error'}`, 'Show Output', 'Open Preview');
      if (choice === 'Show Output') this.feeds.output.show();
      else if (choice === 'Open Preview') await this.panels.open(project.id, name);
      return;
    }
    const client = await this.connection.client().catch(() => undefined);
    const fresh = (await client?.getProject(project.id).catch(() => undefined)) ?? project;
    if (outcome === 'failed') {
      const reason = fresh.statusReason ?? (model?.view().kind === 'failed' ? (model.view() as { reason?: string }).reason : undefined);
      const choice = await vscode.window.showErrorMessage(`${name}: the build failed${reason ? `: ${reason}` : '.'}`, 'Show Output', 'Follow-up Prompt');
      if (choice === 'Show Output') this.feeds.output.show();
      else if (choice === 'Follow-up Prompt') await this.followUp(fresh);
      return;
    }
    if (outcome === 'cancelled') {
      void vscode.window.showWarningMessage(`${name}: the build was cancelled.`);
      return;
    }
    const local = Boolean(fresh.path && fs.existsSync(fresh.path));
    const running = fresh.devServer?.status === 'running';
    const actions = ['Open Preview', ...(local ? ['Open Folder'] : []), 'Follow-up Prompt'];
    const text = running
      ? `${name} is ready: ${shownPreviewUrl(fresh.devServer?.previewUrl, model?.relayDomain ?? (await this.connection.connection().catch(() => undefined))?.previewDomain)}`
      : fresh.devServer?.status === 'failed'
        ? `${name} was built, but its dev server stopped${fresh.devServer.exitCode != null ? ` (exit code ${fresh.devServer.exitCode})` : ''}.`
        : `${name} was built.`;
    const choice = await vscode.window.showInformationMessage(text, ...actions);
    if (choice === 'Open Preview') await this.panels.open(fresh.id, name);
    else if (choice === 'Open Folder') await this.openFolder(fresh);
    else if (choice === 'Follow-up Prompt') await this.followUp(fresh);
  }

  private async resolveProject(client: SentryVibeClient, arg: ProjectArg, title: string, always = false): Promise<Project | undefined> {
    if (!always && arg) {
      if (typeof arg === 'string') return client.getProject(arg).catch(async (e) => (await this.showApiError('Project not found', e), undefined));
      if ('project' in arg) return arg.project;
      return arg;
    }
    let projects: Project[];
    try {
      projects = await client.listProjects();
    } catch (e) {
      await this.showApiError('Could not list projects', e);
      return undefined;
    }
    if (projects.length === 0) {
      const choice = await vscode.window.showInformationMessage('There are no SentryVibe projects yet.', 'New Project');
      if (choice) await this.newProject();
      return undefined;
    }
    projects.sort((a, b) => (b.updatedAt ?? b.createdAt ?? '').localeCompare(a.updatedAt ?? a.createdAt ?? ''));
    const pick = await vscode.window.showQuickPick(
      projects.map((p) => ({
        label: `${statusIcon(p)} ${p.name ?? p.slug}`,
        description: describeProject(p),
        detail: p.prompt,
        project: p,
      })),
      { title, matchOnDescription: true, matchOnDetail: true },
    );
    return pick?.project;
  }

  private async showApiError(what: string, e: unknown): Promise<void> {
    if (e instanceof UnreachableError || (e instanceof ApiError && (e.status === 401 || e.status === 403))) {
      await this.connection.explain(e);
      return;
    }
    void vscode.window.showErrorMessage(`${what}: ${(e as Error).message}`);
  }
}

function progressMessage(e: ProjectEvent, model: PreviewModel): string | undefined {
  switch (e.type) {
    case 'build-started':
      return 'Starting the agent…';
    case 'build-queued':
      return `Waiting for a build slot (position ${e.position ?? '?'})`;
    case 'todos-updated': {
      const t = currentTodo(e.todos);
      const done = e.todos.filter((x) => x.status === 'completed').length;
      return t ? `${t.activeForm && t.status === 'in_progress' ? t.activeForm : t.content} (${done}/${e.todos.length})` : `${done}/${e.todos.length} todos done`;
    }
    case 'tool-use':
      return e.status === 'running' || !e.status ? `${e.name} ${e.inputSummary ?? ''}`.trim() : undefined;
    case 'build-log':
      return e.message;
    case 'dev-server-starting':
      return `Dev server: ${e.phase ?? 'starting'}…`;
    case 'dev-server-log':
      return model.devServerStatus === 'starting' ? e.line.slice(0, 120) : undefined;
    case 'port-detected':
      return `Preview at ${shownPreviewUrl(e.previewUrl, model.relayDomain)}`;
    default:
      return undefined;
  }
}

export function statusIcon(p: Project): string {
  if (p.devServer?.status === 'running') return '$(globe)';
  switch (p.status) {
    case 'building':
      return '$(sync~spin)';
    case 'pending':
      return '$(clock)';
    case 'failed':
      return '$(error)';
    case 'cancelled':
      return '$(circle-slash)';
    default:
      return p.devServer?.status === 'failed' ? '$(warning)' : '$(check)';
  }
}

export function describeProject(p: Project): string {
  const dev = p.devServer?.status && p.devServer.status !== 'stopped' ? ` · dev server ${p.devServer.status}` : '';
  return `${p.status}${dev}${p.templateId ? ` · ${p.templateId}` : ''}`;
}
