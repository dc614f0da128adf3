// Entry point: wires the pieces together and registers commands; the behaviour lives in ./core and ./vscode.
import * as vscode from 'vscode';
import { ConnectionManager } from './vscode/connection';
import { FeedRegistry } from './vscode/feeds';
import { PreviewPanels } from './vscode/previewPanel';
import { ProjectCommands, type ProjectArg } from './vscode/projects';
import { ProjectsTree } from './vscode/projectsTree';
import { RunnerManager } from './vscode/runner';
import { SignInCommands } from './vscode/signIn';

export function activate(context: vscode.ExtensionContext): void {
  const version = String(context.extension.packageJSON.version ?? '0.0.0');
  const output = vscode.window.createOutputChannel('SentryVibe');
  const connection = new ConnectionManager(context, version);
  const runners = new RunnerManager(connection);
  const feeds = new FeedRegistry(connection, output);
  const panels = new PreviewPanels(context.extensionUri, connection, feeds, runners);
  const tree = new ProjectsTree(connection);
  const signIn = new SignInCommands(connection);
  const view = vscode.window.createTreeView('sentryvibe.projects', { treeDataProvider: tree });
  tree.attach(view);
  const projects = new ProjectCommands(connection, runners, feeds, panels, () => tree.refresh());

  context.subscriptions.push(
    output,
    connection,
    runners,
    feeds,
    panels,
    tree,
    view,
    runners.onDidChange(() => tree.refresh()),
    connection.onDidChange(() => tree.refresh()),

    vscode.commands.registerCommand('sentryvibe.newProject', () => projects.newProject()),
    vscode.commands.registerCommand('sentryvibe.openPreview', (arg?: ProjectArg) => projects.openPreview(arg)),
    vscode.commands.registerCommand('sentryvibe.followUp', (arg?: ProjectArg) => projects.followUp(arg)),
    vscode.commands.registerCommand('sentryvibe.showProjects', () => projects.showProjects()),
    vscode.commands.registerCommand('sentryvibe.refreshProjects', () => tree.refresh()),
    vscode.commands.registerCommand('sentryvibe.openProjectFolder', (arg?: ProjectArg) => projects.openFolder(arg)),
    vscode.commands.registerCommand('sentryvibe.restartDevServer', (arg?: ProjectArg) => projects.restartDevServer(arg)),
    vscode.commands.registerCommand('sentryvibe.startRunner', () => runners.startRunner()),
    vscode.commands.registerCommand('sentryvibe.signIn', () => signIn.signIn()),
    vscode.commands.registerCommand('sentryvibe.signOut', () => signIn.signOut()),
    vscode.commands.registerCommand('sentryvibe.showOutput', () => output.show()),
  );
}

export function deactivate(): void {
  // Everything is in context.subscriptions.
}
