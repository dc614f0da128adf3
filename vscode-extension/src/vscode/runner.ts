// Runner presence: polls GET /api/runners for the status bar, offers to start a runner in a terminal.
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Account, Runner } from '../core/api';
import { NotConfiguredError } from '../core/discovery';
import { buildRunnerLaunch, findOnPath, findRepoRoot } from '../core/runnerLaunch';
import { obtainRunnerToken, type RunnerCredentials, RunnerTokenError } from '../core/runnerToken';
import { describeAccount } from '../core/signIn';
import type { ConnectionManager } from './connection';

const POLL_MS = 10_000;

export class RunnerManager implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private timer?: ReturnType<typeof setTimeout>;
  private terminal?: vscode.Terminal;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<readonly Runner[]>();
  readonly onDidChange = this.changed.event;
  runners: readonly Runner[] = [];
  /** False until a poll has succeeded: an empty list before that means "unknown", not "offline". */
  known = false;
  private error?: string;
  private notConfigured = false;
  private disposed = false;
  private build?: string;
  /** Who the status bar says is signed in (GET /api/account). */
  private account?: Account;

  constructor(private readonly connection: ConnectionManager) {
    this.item = vscode.window.createStatusBarItem('sentryvibe.runner', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'SentryVibe Runner';
    this.item.command = 'sentryvibe.showProjects';
    this.disposables.push(
      this.item,
      this.changed,
      connection.onDidChange(() => void this.poll()),
      vscode.window.onDidCloseTerminal((t) => {
        if (t === this.terminal) this.terminal = undefined;
      }),
    );
    this.render();
    void this.poll();
  }

  get online(): Runner[] {
    return this.runners.filter((r) => r.status === 'online');
  }

  /** The build the status bar mentions ("todo-app: building: Add list 2/5"); undefined clears it. */
  setCurrentBuild(text: string | undefined): void {
    this.build = text;
    this.render();
  }

  async poll(): Promise<readonly Runner[]> {
    if (this.timer) clearTimeout(this.timer);
    try {
      const client = await this.connection.client();
      this.notConfigured = false;
      this.runners = await client.listRunners();
      this.known = true;
      this.error = undefined;
      this.account = await this.connection.account();
    } catch (e) {
      this.account = undefined;
      this.notConfigured = e instanceof NotConfiguredError;
      this.known = false;
      this.error = (e as Error).message;
    }
    if (this.disposed) return this.runners;
    this.render();
    this.changed.fire(this.runners);
    this.timer = setTimeout(() => void this.poll(), POLL_MS);
    return this.runners;
  }

  /**
   * Makes sure some runner is online; when none is, offers to start one and waits for it to appear.
   * Returns false when the user declined or it did not come up.
   */
  async ensureOnline(purpose: string): Promise<boolean> {
    await this.poll();
    if (this.error) return true; // the API call that follows will explain the real problem
    if (this.online.length > 0) return true;
    const choice = await vscode.window.showWarningMessage(
      `No SentryVibe runner is online, so ${purpose} cannot start. Start one in a terminal here?`,
      { modal: false },
      'Start Runner',
      'Continue Anyway',
    );
    if (choice === 'Continue Anyway') return true;
    if (choice !== 'Start Runner') return false;
    if (!(await this.startRunner())) return false;
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Waiting for the runner to connect…', cancellable: true },
      async (_p, token) => {
        const deadline = Date.now() + 120_000;
        while (!token.isCancellationRequested && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 2_000));
          await this.poll();
          if (this.online.length > 0) return true;
        }
        if (!token.isCancellationRequested) {
          void vscode.window.showWarningMessage('The runner did not come online within 2 minutes; see its terminal.');
        }
        return false;
      },
    );
  }

  async startRunner(): Promise<boolean> {
    if (this.terminal) {
      this.terminal.show();
      const again = await vscode.window.showInformationMessage('A runner terminal is already open.', 'Show It', 'Start Another');
      if (again !== 'Start Another') return again === 'Show It';
    }
    let connection;
    let client;
    try {
      connection = await this.connection.connection();
      client = await this.connection.client();
    } catch (e) {
      await this.connection.explain(e);
      return false;
    }
    if (!connection.brokerUrl) {
      const choice = await vscode.window.showErrorMessage('No broker URL: set "sentryvibe.runner.brokerUrl" or start a local AppHost.', 'Open Settings');
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', 'sentryvibe.runner');
      return false;
    }
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const workspaceRoot = await this.chooseWorkspace(this.connection.setting('runner.workspace'), folders);
    if (workspaceRoot === null) return false;
    const credentials = await this.runnerCredentials(connection.webUrl, client, connection.runnerToken);
    if (!credentials) return false;
    let launch;
    try {
      launch = buildRunnerLaunch({
        brokerUrl: connection.brokerUrl,
        token: credentials.token,
        runnerId: credentials.runnerId,
        command: this.connection.setting('runner.command'),
        workspaceRoot,
        repoRoot: findRepoRoot(folders),
      });
    } catch (e) {
      const choice = await vscode.window.showErrorMessage((e as Error).message, 'Open Settings');
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', 'sentryvibe.runner');
      return false;
    }
    if (!launch.fromSource && !findOnPath(launch.executable)) {
      const choice = await vscode.window.showErrorMessage(
        `"${launch.executable}" was not found on PATH. Install the SentryVibe runner, set "sentryvibe.runner.command" to its path, or open the SentryVibe repository to run it from source.`,
        'Open Settings',
      );
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', 'sentryvibe.runner.command');
      return false;
    }
    // shellPath/shellArgs: the runner is the terminal's process, with its arguments passed as a vector. The token is
    // in `env` (readable only by this user), never in the arguments; isTransient keeps VS Code from saving the
    // terminal (and its environment) to revive it after a reload.
    this.terminal = vscode.window.createTerminal({
      name: 'SentryVibe Runner',
      shellPath: launch.executable,
      shellArgs: launch.args,
      cwd: launch.cwd,
      env: launch.env,
      isTransient: true,
      iconPath: new vscode.ThemeIcon('server-process'),
      message: `$ ${launch.display}`,
    });
    this.terminal.show(true);
    return true;
  }

  /**
   * The runner token for this server: secret storage, else the `sentryvibe.runner.token` setting (then moved into
   * secret storage), else a new one made through the API. Undefined after telling the user what went wrong.
   */
  private async runnerCredentials(
    webUrl: string,
    api: Parameters<typeof obtainRunnerToken>[0]['api'],
    settingToken: string | undefined,
  ): Promise<RunnerCredentials | undefined> {
    let credentials: RunnerCredentials;
    try {
      credentials = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Getting a runner token…' },
        () => obtainRunnerToken({ webUrl, api, secrets: this.connection.secrets, settingToken }),
      );
    } catch (e) {
      const fix = e instanceof RunnerTokenError ? e.fix : undefined;
      const choice = await vscode.window.showErrorMessage((e as Error).message, ...(fix === 'settings' ? ['Open Settings', 'Sign In'] : ['Show Output']));
      if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'sentryvibe.runner.token');
      else if (choice === 'Sign In') await vscode.commands.executeCommand('sentryvibe.signIn');
      else if (choice === 'Show Output') await vscode.commands.executeCommand('sentryvibe.showOutput');
      return undefined;
    }
    if (credentials.note) void vscode.window.showInformationMessage(credentials.note);
    if (credentials.source === 'settings' && settingToken) {
      void vscode.window
        .showInformationMessage(
          'The runner token from the "sentryvibe.runner.token" setting is now kept in VS Code\'s secret storage. Remove it from settings?',
          'Remove From Settings',
        )
        .then((c) => {
          if (c) void vscode.workspace.getConfiguration('sentryvibe').update('runner.token', undefined, vscode.ConfigurationTarget.Global);
        });
    }
    return credentials;
  }

  /** undefined = the runner's default; null = the user cancelled. */
  private async chooseWorkspace(configured: string | undefined, folders: string[]): Promise<string | undefined | null> {
    if (configured?.trim()) return configured.trim();
    const defaultRoot = path.join(os.homedir(), 'sentryvibe-workspace');
    const items: (vscode.QuickPickItem & { value?: string })[] = [
      ...folders.map((f) => ({ label: `$(folder) ${path.basename(f)}`, description: f, detail: 'New projects are created inside this folder', value: f })),
      { label: '$(home) Runner default', description: defaultRoot, value: undefined },
    ];
    if (folders.length === 0) return undefined;
    const pick = await vscode.window.showQuickPick(items, {
      title: 'Where should the runner create projects? (WORKSPACE_ROOT)',
      ignoreFocusOut: true,
    });
    if (!pick) return null;
    return pick.value;
  }

  private render(): void {
    const online = this.online;
    const who = this.account ? `Signed in as ${describeAccount(this.account)}\n` : '';
    // Someone who never set SentryVibe up gets no warning in their status bar.
    if (this.notConfigured) this.item.hide();
    else this.item.show();
    if (this.error) {
      this.item.text = '$(debug-disconnect) SentryVibe';
      this.item.tooltip = `SentryVibe: ${this.error}`;
      this.item.backgroundColor = undefined;
    } else if (online.length > 0) {
      this.item.text = `$(vm-running) SentryVibe${this.build ? `: ${this.build}` : ''}`;
      this.item.tooltip = `${who}Runner${online.length > 1 ? 's' : ''} online: ${online.map((r) => r.name ?? r.id).join(', ')}${this.build ? `\n${this.build}` : ''}`;
      this.item.backgroundColor = undefined;
    } else {
      this.item.text = `$(vm-outline) SentryVibe: runner offline${this.build ? ` · ${this.build}` : ''}`;
      this.item.tooltip = `${who}No runner is online. Click for projects; run "SentryVibe: Start Runner" to start one.`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    }
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
