// Settings + secret storage → a client. Re-resolved on each use, so a restarted AppHost (new apphost.json)
// or changed settings take effect without reloading the window.
import * as vscode from 'vscode';
import { SentryVibeClient } from '../core/client';
import { type Connection, NotConfiguredError, appHostFilePath, resolveConnection } from '../core/discovery';
import { forgetRunnerToken, type SecretStore } from '../core/runnerToken';
import { machineSetting, type MachineSetting } from '../core/settings';

const SECRET_KEY = 'sentryvibe.apiToken';

export class ConnectionManager implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly context: vscode.ExtensionContext, private readonly version: string) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('sentryvibe')) this.changed.fire();
      }),
      context.secrets.onDidChange((e) => {
        if (e.key === SECRET_KEY) this.changed.fire();
      }),
    );
  }

  /** A machine-scoped setting as the user set it: a workspace's .vscode/settings.json is never read (core/settings.ts). */
  setting(key: MachineSetting): string | undefined {
    return machineSetting(vscode.workspace.getConfiguration('sentryvibe').inspect<string>(key));
  }

  /** VS Code's secret storage, where the API token and the runner token live. */
  get secrets(): SecretStore {
    return this.context.secrets;
  }

  async connection(): Promise<Connection> {
    return resolveConnection({
      webUrl: this.setting('webUrl'),
      apiToken: this.setting('apiToken'),
      signedInToken: await this.context.secrets.get(SECRET_KEY),
      runnerBrokerUrl: this.setting('runner.brokerUrl'),
      runnerToken: this.setting('runner.token'),
      previewDomain: this.setting('previewDomain'),
    });
  }

  async client(): Promise<SentryVibeClient> {
    const c = await this.connection();
    return new SentryVibeClient({ webUrl: c.webUrl, apiToken: c.apiToken, userAgent: `sentryvibe-vscode/${this.version}` });
  }

  /** A client, or undefined after telling the user how to connect. */
  async clientOrExplain(): Promise<SentryVibeClient | undefined> {
    try {
      return await this.client();
    } catch (e) {
      await this.explain(e);
      return undefined;
    }
  }

  async explain(e: unknown): Promise<void> {
    const message = e instanceof Error ? e.message : String(e);
    const actions = e instanceof NotConfiguredError ? ['Sign In', 'Open Settings'] : ['Sign In', 'Show Output'];
    const choice = await vscode.window.showErrorMessage(message, ...actions);
    if (choice === 'Sign In') await vscode.commands.executeCommand('sentryvibe.signIn');
    else if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'sentryvibe');
    else if (choice === 'Show Output') await vscode.commands.executeCommand('sentryvibe.showOutput');
  }

  async signIn(): Promise<void> {
    const config = vscode.workspace.getConfiguration('sentryvibe');
    let current: Connection | undefined;
    try {
      current = await this.connection();
    } catch {
      current = undefined;
    }
    // Pre-filled with what is in use (settings or apphost.json); only a changed URL is written to settings.
    const entered = await vscode.window.showInputBox({
      title: 'SentryVibe: Sign In (1/2)',
      prompt: current ? 'URL of SentryVibe Web' : `URL of SentryVibe Web (no ${appHostFilePath()} found)`,
      value: current?.webUrl ?? '',
      placeHolder: 'https://sentryvibe.example.com',
      ignoreFocusOut: true,
      validateInput: (v) => (/^https?:\/\/\S+$/.test(v.trim()) ? undefined : 'An http(s) URL'),
    });
    if (!entered) return;
    const webUrl = entered.trim().replace(/\/+$/, '');
    if (webUrl !== current?.webUrl) await config.update('webUrl', webUrl, vscode.ConfigurationTarget.Global);
    const token = await vscode.window.showInputBox({
      title: 'SentryVibe: Sign In (2/2)',
      prompt: `API token for ${webUrl} (kept in VS Code's secret storage)`,
      password: true,
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() ? undefined : 'The token from the SentryVibe web UI or the AppHost output'),
    });
    if (!token) return;
    const client = new SentryVibeClient({ webUrl, apiToken: token.trim() });
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Checking the token with ${webUrl}…` },
        () => client.listRunners(),
      );
    } catch (e) {
      const retry = await vscode.window.showErrorMessage(`Sign-in failed: ${(e as Error).message}`, 'Try Again', 'Save Anyway');
      if (retry === 'Try Again') return this.signIn();
      if (retry !== 'Save Anyway') return;
    }
    await this.context.secrets.store(SECRET_KEY, token.trim());
    void vscode.window.showInformationMessage(`Signed in to SentryVibe at ${webUrl}.`);
  }

  async signOut(): Promise<void> {
    const webUrl = await this.connection().then((c) => c.webUrl, () => undefined);
    await this.context.secrets.delete(SECRET_KEY);
    // The runner token "Start Runner" made for this server goes too (a running runner keeps its link).
    if (webUrl) await forgetRunnerToken(this.context.secrets, webUrl);
    const inSettings = this.setting('apiToken');
    void vscode.window.showInformationMessage(
      inSettings
        ? 'Signed out. A token is still set in the "sentryvibe.apiToken" setting; remove it there too.'
        : 'Signed out of SentryVibe.',
    );
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
