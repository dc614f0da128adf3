// The "Projects" view in the SentryVibe activity-bar container; its description says who is signed in.
import * as vscode from 'vscode';
import type { Project } from '../core/api';
import { todoMark } from '../core/events';
import { shownPreviewUrl } from '../core/previewUrls';
import { describeAccount } from '../core/signIn';
import type { ConnectionManager } from './connection';
import { describeProject } from './projects';

type Node = { kind: 'project'; project: Project } | { kind: 'detail'; label: string; description?: string; icon?: string } | { kind: 'message'; label: string };

export class ProjectsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  /** The configured preview domain, for the preview URL rule on what the tree shows. */
  private relayDomain?: string;

  private view?: vscode.TreeView<Node>;

  constructor(private readonly connection: ConnectionManager) {}

  /** The view this provider fills: its description shows the signed-in account next to the title. */
  attach(view: vscode.TreeView<Node>): void {
    this.view = view;
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'message') {
      const item = new vscode.TreeItem(node.label);
      item.iconPath = new vscode.ThemeIcon('info');
      return item;
    }
    if (node.kind === 'detail') {
      const item = new vscode.TreeItem(node.label);
      item.description = node.description;
      if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
      return item;
    }
    const p = node.project;
    const item = new vscode.TreeItem(p.name ?? p.slug, vscode.TreeItemCollapsibleState.Collapsed);
    item.id = p.id;
    item.description = describeProject(p);
    item.tooltip = new vscode.MarkdownString(
      [`**${p.name ?? p.slug}**`, p.prompt ? `> ${p.prompt}` : '', p.statusReason ? `_${p.statusReason}_` : '', shownPreviewUrl(p.devServer?.previewUrl, this.relayDomain)]
        .filter(Boolean)
        .join('\n\n'),
    );
    item.iconPath = new vscode.ThemeIcon(iconFor(p));
    item.contextValue = `project.${p.status}`;
    item.command = { command: 'sentryvibe.openPreview', title: 'Open Preview', arguments: [p] };
    return item;
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (node?.kind === 'project') return details(node.project, this.relayDomain);
    if (node) return [];
    let client;
    try {
      client = await this.connection.client();
      this.relayDomain = (await this.connection.connection()).previewDomain;
    } catch {
      if (this.view) this.view.description = undefined;
      return []; // the welcome view explains how to connect
    }
    void this.connection.account().then((account) => {
      if (this.view) this.view.description = account ? describeAccount(account) : undefined;
    });
    try {
      const projects = await client.listProjects();
      projects.sort((a, b) => (b.updatedAt ?? b.createdAt ?? '').localeCompare(a.updatedAt ?? a.createdAt ?? ''));
      return projects.map((project) => ({ kind: 'project', project }));
    } catch (e) {
      return [{ kind: 'message', label: (e as Error).message }];
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}

function details(p: Project, relayDomain: string | undefined): Node[] {
  const nodes: Node[] = [];
  if (p.statusReason) nodes.push({ kind: 'detail', label: p.statusReason, icon: 'warning' });
  const d = p.devServer;
  if (d) {
    nodes.push({
      kind: 'detail',
      label: `dev server ${d.status}`,
      description: (d.previewUrl ? shownPreviewUrl(d.previewUrl, relayDomain) : undefined) ?? (d.exitCode != null ? `exit code ${d.exitCode}` : d.port ? `port ${d.port}` : undefined),
      icon: d.status === 'running' ? 'globe' : d.status === 'failed' ? 'error' : 'server-process',
    });
  }
  if (p.path) nodes.push({ kind: 'detail', label: p.path, icon: 'folder' });
  for (const t of p.todos ?? []) nodes.push({ kind: 'detail', label: `${todoMark(t.status)} ${t.content}` });
  return nodes;
}

function iconFor(p: Project): string {
  if (p.devServer?.status === 'running') return 'globe';
  switch (p.status) {
    case 'building':
      return 'sync~spin';
    case 'pending':
      return 'clock';
    case 'failed':
      return 'error';
    case 'cancelled':
      return 'circle-slash';
    default:
      return p.devServer?.status === 'failed' ? 'warning' : 'check';
  }
}
