// Settings + secret storage → a client, and who it is signed in as. Re-resolved on each use, so a restarted AppHost
// (new apphost.json), a sign-in or changed settings take effect without reloading the window.
import * as vscode from 'vscode';
import type { Account } from '../core/api';
import { SentryVibeClient } from '../core/client';
import { type Connection, NotConfiguredError, resolveConnection } from '../core/discovery';
import type { SecretStore } from '../core/runnerToken';
import { machineSetting, type MachineSetting } from '../core/settings';
import { LEGACY_TOKEN_KEY, PERSONAL_TOKEN_KEY_PREFIX, storedToken } from '../core/signIn';

export class ConnectionManager implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  /** The last account /api/account named, and for which server and token. */
  private known?: { key: string; account: Account };

  constructor(private readonly context: vscode.ExtensionContext, private readonly version: string) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('sentryvibe')) this.changed.fire();
      }),
      context.secrets.onDidChange((e) => {
        if (e.key === LEGACY_TOKEN_KEY || e.key.startsWith(PERSONAL_TOKEN_KEY_PREFIX)) this.changed.fire();
      }),
    );
  }

  /** A machine-scoped setting as the user set it: a workspace's .vscode/settings.json is never read (core/settings.ts). */
  setting(key: MachineSetting): string | undefined {
    return machineSetting(vscode.workspace.getConfiguration('sentryvibe').inspect<string>(key));
  }

  /** VS Code's secret storage, where the signed-in personal token and the runner token live (one per server). */
  get secrets(): SecretStore {
    return this.context.secrets;
  }

  async connection(): Promise<Connection> {
    return resolveConnection({
      webUrl: this.setting('webUrl'),
      apiToken: this.setting('apiToken'),
      signedInToken: (webUrl) => storedToken(this.context.secrets, webUrl),
      runnerBrokerUrl: this.setting('runner.brokerUrl'),
      runnerToken: this.setting('runner.token'),
      previewDomain: this.setting('previewDomain'),
    });
  }

  async client(): Promise<SentryVibeClient> {
    const c = await this.connection();
    return new SentryVibeClient({ webUrl: c.webUrl, apiToken: c.apiToken, userAgent: this.userAgent });
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

  /**
   * Who the token in use speaks for (GET /api/account), for the status bar and the Projects view. Kept per server and
   * token; undefined when not connected, refused, or the server predates accounts.
   */
  async account(): Promise<Account | undefined> {
    let c: Connection;
    try {
      c = await this.connection();
    } catch {
      return undefined;
    }
    if (!c.apiToken) return undefined;
    const key = `${c.webUrl}\n${c.apiToken}`;
    if (this.known?.key === key) return this.known.account;
    try {
      const account = await new SentryVibeClient({ webUrl: c.webUrl, apiToken: c.apiToken, timeoutMs: 10_000, userAgent: this.userAgent }).getAccount();
      this.known = { key, account };
      return account;
    } catch {
      return undefined;
    }
  }

  /** The account Sign In just checked: no second request for the status bar. */
  remember(webUrl: string, token: string, account: Account | undefined): void {
    this.known = account ? { key: `${webUrl.replace(/\/+$/, '')}\n${token}`, account } : undefined;
  }

  get userAgent(): string {
    return `sentryvibe-vscode/${this.version}`;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
