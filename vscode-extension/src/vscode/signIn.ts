// "SentryVibe: Sign In" and "Sign Out" in VS Code's UI: which server, a personal token (or the browser to make one),
// and what went wrong in words. Checking and keeping the token is core/signIn.ts; the model is docs/accounts.md.
import * as vscode from 'vscode';
import { appHostFilePath } from '../core/discovery';
import { LEGACY_TOKEN_KEY, accountPageUrl, describeAccount, signIn, signOut, validateServerUrl } from '../core/signIn';
import type { ConnectionManager } from './connection';

type How = 'paste' | 'open';

export class SignInCommands {
  constructor(private readonly connection: ConnectionManager) {}

  /** True when a token was checked and kept. */
  async signIn(): Promise<boolean> {
    const configured = this.connection.setting('webUrl')?.trim().replace(/\/+$/, '') || undefined;
    const appHostUrl = await this.connection.connection().then((c) => (c.source.webUrl === 'apphost' ? c.webUrl : undefined), () => undefined);
    // The server: the "sentryvibe.webUrl" setting when set, else asked (offering a local AppHost's address).
    let webUrl = configured ?? (await this.askServer(appHostUrl));
    if (!webUrl) return false;

    const how = await this.askHow(webUrl);
    if (!how) return false;
    if (how === 'open') await this.openAccountPage(webUrl);

    let token: string | undefined;
    for (;;) {
      token ??= await this.askToken(webUrl);
      if (!token) return false;
      const target = webUrl;
      const entered = token;
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Checking the token with ${target}…` },
        () => signIn({ webUrl: target, token: entered, secrets: this.connection.secrets, userAgent: this.connection.userAgent }),
      );
      if (result.ok) {
        this.connection.remember(webUrl, token, result.account);
        if (webUrl !== configured && webUrl !== appHostUrl) {
          await vscode.workspace.getConfiguration('sentryvibe').update('webUrl', webUrl, vscode.ConfigurationTarget.Global);
        }
        const who = result.account ? ` as ${describeAccount(result.account)}` : '';
        void vscode.window.showInformationMessage(`Signed in to ${webUrl}${who}.`);
        return true;
      }
      if (result.reason === 'refused') {
        const choice = await vscode.window.showErrorMessage(result.message, 'Open Account Page', 'Try Again');
        if (choice === 'Open Account Page') await this.openAccountPage(webUrl);
        else if (choice !== 'Try Again') return false;
        token = undefined; // that one will not do: ask for another
      } else if (result.reason === 'unreachable') {
        const choice = await vscode.window.showErrorMessage(result.message, 'Try Again', 'Change Address');
        if (choice === 'Change Address') {
          webUrl = await this.askServer(webUrl);
          if (!webUrl) return false;
        } else if (choice !== 'Try Again') return false;
      } else {
        const choice = await vscode.window.showErrorMessage(result.message, 'Try Again');
        if (choice !== 'Try Again') return false;
        token = undefined;
      }
    }
  }

  /** Forgets this server's signed-in token and the runner token made with it, and says what is used now. */
  async signOut(): Promise<void> {
    const webUrl = await this.connection.connection().then((c) => c.webUrl, () => this.connection.setting('webUrl')?.trim());
    if (webUrl) await signOut(this.connection.secrets, webUrl);
    else await this.connection.secrets.delete(LEGACY_TOKEN_KEY);
    const now = await this.connection.connection().then((c) => c.source.apiToken, () => 'none' as const);
    const where = webUrl ? ` of ${webUrl}` : '';
    let message = `Signed out${where}.`;
    if (now === 'settings') message += ' The "sentryvibe.apiToken" setting still holds a token, which is used now: remove it there to sign out fully.';
    else if (now === 'apphost') message += " The local AppHost's API token (the owner's) is used for it now.";
    void vscode.window.showInformationMessage(message);
  }

  private askServer(suggested: string | undefined): Thenable<string | undefined> {
    return vscode.window
      .showInputBox({
        title: 'SentryVibe: Sign In — server',
        prompt: suggested ? 'Address of SentryVibe Web' : `Address of SentryVibe Web (no local AppHost: ${appHostFilePath()} not found)`,
        value: suggested ?? '',
        placeHolder: 'https://sentryvibe.example.com',
        ignoreFocusOut: true,
        validateInput: validateServerUrl,
      })
      .then((v) => v?.trim().replace(/\/+$/, '') || undefined);
  }

  private async askHow(webUrl: string): Promise<How | undefined> {
    const items: (vscode.QuickPickItem & { how: How })[] = [
      { label: '$(key) Paste a personal token', detail: 'A token you made on your account page (it starts with svp_)', how: 'paste' },
      { label: '$(link-external) Open account page', description: accountPageUrl(webUrl), detail: 'Make a token in the browser, then paste it here', how: 'open' },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: `SentryVibe: Sign In to ${webUrl}`, ignoreFocusOut: true });
    return pick?.how;
  }

  private askToken(webUrl: string): Thenable<string | undefined> {
    return vscode.window
      .showInputBox({
        title: `SentryVibe: Sign In to ${webUrl} — personal token`,
        prompt: "Personal token from your account page (kept in VS Code's secret storage, sent only to this server)",
        placeHolder: 'svp_…',
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() ? undefined : `Paste a personal token made at ${accountPageUrl(webUrl)}`),
      })
      .then((v) => v?.trim() || undefined);
  }

  private async openAccountPage(webUrl: string): Promise<void> {
    const url = accountPageUrl(webUrl);
    const opened = await vscode.env.openExternal(vscode.Uri.parse(url));
    if (!opened) void vscode.window.showWarningMessage(`Open ${url} in a browser to make a personal token.`);
  }
}
