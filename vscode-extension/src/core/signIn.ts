// "SentryVibe: Sign In" without VS Code: a personal token (svp_…, made on the account page) is checked with
// GET /api/account, kept in secret storage under the server it was checked with, and sent as the bearer token of
// every request to that server and no other. Sign Out forgets it. See docs/accounts.md.
import type { Account } from './api';
import { ApiError, SentryVibeClient, UnreachableError } from './client';
import { forgetRunnerToken, type SecretStore } from './runnerToken';
import type { FetchLike } from './sse';

/** Personal tokens start with this; anything else is the API token of a local AppHost (the owner's). */
export const PERSONAL_TOKEN_PREFIX = 'svp_';

/** Where Sign In kept one token for whichever server was configured, before tokens were kept per server. */
export const LEGACY_TOKEN_KEY = 'sentryvibe.apiToken';

/** The key prefix of per-server tokens (secret storage change events are matched on it). */
export const PERSONAL_TOKEN_KEY_PREFIX = 'sentryvibe.personalToken:';

/** The server's origin, the unit a token belongs to. */
export function serverOrigin(webUrl: string): string {
  try {
    return new URL(webUrl).origin;
  } catch {
    return webUrl.replace(/\/+$/, '');
  }
}

/** Secret-storage key of the signed-in token for one server. */
export function personalTokenSecretKey(webUrl: string): string {
  return `${PERSONAL_TOKEN_KEY_PREFIX}${serverOrigin(webUrl)}`;
}

/** Where a person makes a personal token: the tokens part of their account page. */
export function accountPageUrl(webUrl: string): string {
  return `${webUrl.trim().replace(/\/+$/, '')}/account#tokens`;
}

/** `undefined` for a well-formed http(s) URL, else what is wrong with it (for an input box). */
export function validateServerUrl(value: string): string | undefined {
  const v = value.trim();
  try {
    const u = new URL(v);
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.hostname && !u.username && !u.password) return undefined;
  } catch {
    /* below */
  }
  return 'The address of SentryVibe Web, e.g. https://sentryvibe.example.com';
}

export type TokenCheck =
  /** `account` is missing only on a server from before accounts, which accepted the token but cannot say whose it is. */
  | { ok: true; account?: Account }
  | { ok: false; reason: 'refused' | 'unreachable' | 'failed'; message: string };

export interface CheckOptions {
  fetch?: FetchLike;
  timeoutMs?: number;
  userAgent?: string;
}

export function refusedMessage(webUrl: string): string {
  return `That token was refused by ${webUrl}. Make a new one on your account page.`;
}

/** Asks the server whose token this is. Never throws: a failed check says why in words. */
export async function checkToken(webUrl: string, token: string, options: CheckOptions = {}): Promise<TokenCheck> {
  const client = new SentryVibeClient({
    webUrl,
    apiToken: token.trim(),
    fetch: options.fetch,
    timeoutMs: options.timeoutMs ?? 15_000,
    userAgent: options.userAgent,
  });
  try {
    return { ok: true, account: await client.getAccount() };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) return failure(client.webUrl, e);
  }
  // No /api/account: a server from before accounts. The token is right when the API answers with it.
  try {
    await client.listRunners();
    return { ok: true };
  } catch (e) {
    return failure(client.webUrl, e);
  }
}

function failure(webUrl: string, e: unknown): TokenCheck {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
    return { ok: false, reason: 'refused', message: refusedMessage(webUrl) };
  }
  if (e instanceof UnreachableError) {
    return { ok: false, reason: 'unreachable', message: `${e.message}. Check the address and that the server is running.` };
  }
  return { ok: false, reason: 'failed', message: `Signing in to ${webUrl} failed: ${e instanceof Error ? e.message : String(e)}` };
}

export interface SignInOptions extends CheckOptions {
  webUrl: string;
  token: string;
  secrets: SecretStore;
}

/** Checks the token and keeps it for this server only when the server accepted it. */
export async function signIn(o: SignInOptions): Promise<TokenCheck> {
  const token = o.token.trim();
  if (!token) return { ok: false, reason: 'failed', message: 'Paste a personal token from your account page.' };
  const check = await checkToken(o.webUrl, token, o);
  if (!check.ok) return check;
  await o.secrets.store(personalTokenSecretKey(o.webUrl), token);
  // One token for every server is what an earlier version kept; from now on each server has its own.
  await o.secrets.delete(LEGACY_TOKEN_KEY);
  return check;
}

/**
 * The token signed in for this server. A token an earlier version kept (one for whichever server was configured)
 * is moved under the server asked about first, the one it was being sent to.
 */
export async function storedToken(secrets: SecretStore, webUrl: string): Promise<string | undefined> {
  const key = personalTokenSecretKey(webUrl);
  const token = (await secrets.get(key))?.trim();
  if (token) return token;
  const legacy = (await secrets.get(LEGACY_TOKEN_KEY))?.trim();
  if (!legacy) return undefined;
  await secrets.store(key, legacy);
  await secrets.delete(LEGACY_TOKEN_KEY);
  return legacy;
}

/** Forgets the signed-in token of this server (and an earlier version's token) and the runner token made with it. */
export async function signOut(secrets: SecretStore, webUrl: string): Promise<void> {
  await secrets.delete(personalTokenSecretKey(webUrl));
  await secrets.delete(LEGACY_TOKEN_KEY);
  await forgetRunnerToken(secrets, webUrl);
}

/** "Ada (owner)" for the status bar and the Projects view. */
export function describeAccount(account: Account): string {
  return account.isOwner ? `${account.name} (owner)` : account.name;
}
