// The runner token "Start Runner" hands to the runner it starts. Never the API token: the broker refuses it, and a
// runner must hold only a runner's power (docs/security.md). The token is made through the API
// (POST /api/runners/tokens), bound to one runner id where the server supports it, kept in VS Code's secret storage
// (never settings), and given to the runner through its environment (runnerLaunch.ts), never its command line.
import * as os from 'node:os';
import type { CreatedRunnerToken, RunnerTokenInfo } from './api';
import { ApiError, UnreachableError } from './client';

/** The part of `vscode.SecretStorage` used here. */
export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

export interface RunnerTokenApi {
  createRunnerToken(request: { name: string; runnerId?: string }): Promise<CreatedRunnerToken>;
  listRunnerTokens(): Promise<RunnerTokenInfo[]>;
}

/** What is kept in secret storage, one entry per SentryVibe server. */
export interface StoredRunnerToken {
  token: string;
  /** 'created': made by the extension; 'settings': moved from the `sentryvibe.runner.token` setting. */
  source: 'created' | 'settings';
  tokenId?: string;
  name?: string;
  /** The runner id the server bound the token to, when it says so. */
  runnerId?: string;
}

export interface RunnerCredentials {
  token: string;
  /** Given to the runner as its id when set (the token only links as this id). */
  runnerId?: string;
  source: 'created' | 'stored' | 'settings';
  /** Something the user should hear about (e.g. "the previous token was revoked; made a new one"). */
  note?: string;
}

export type RunnerTokenFix = 'settings' | 'sign-in';

/** Making a runner token failed; `message` says why and what to do. */
export class RunnerTokenError extends Error {
  constructor(message: string, readonly fix?: RunnerTokenFix) {
    super(message);
    this.name = 'RunnerTokenError';
  }
}

/** Secret-storage key of the runner token for one server (its origin). */
export function runnerTokenSecretKey(webUrl: string): string {
  let origin = webUrl.replace(/\/+$/, '');
  try {
    origin = new URL(webUrl).origin;
  } catch {
    /* keep the text */
  }
  return `sentryvibe.runnerToken:${origin}`;
}

/** `vscode-<hostname>`, in the characters a runner id may hold (the runner's own default id is the host name). */
export function runnerTokenName(hostname: string = os.hostname()): string {
  const host = hostname.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 60);
  return `vscode-${host || 'local'}`;
}

/** The runner id asked for with the token: the name, already in runner-id form. */
export function runnerIdFromName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 100);
}

export function parseStored(text: string | undefined): StoredRunnerToken | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<StoredRunnerToken>;
    if (typeof v.token !== 'string' || !v.token) return undefined;
    return {
      token: v.token,
      source: v.source === 'settings' ? 'settings' : 'created',
      tokenId: typeof v.tokenId === 'string' ? v.tokenId : undefined,
      name: typeof v.name === 'string' ? v.name : undefined,
      runnerId: typeof v.runnerId === 'string' && v.runnerId ? v.runnerId : undefined,
    };
  } catch {
    return undefined;
  }
}

export interface ObtainOptions {
  webUrl: string;
  api: RunnerTokenApi;
  secrets: SecretStore;
  /** `sentryvibe.runner.token`: when set (and new), it replaces what secret storage holds. */
  settingToken?: string;
  hostname?: string;
}

/**
 * Secret storage first; a token newly put in the `sentryvibe.runner.token` setting replaces it (the setting is the
 * override, moved into secret storage); otherwise a new token is made through the API and stored.
 */
export async function obtainRunnerToken(o: ObtainOptions): Promise<RunnerCredentials> {
  const key = runnerTokenSecretKey(o.webUrl);
  const stored = parseStored(await o.secrets.get(key));
  const setting = o.settingToken?.trim();

  if (setting && setting !== stored?.token) {
    await o.secrets.store(key, JSON.stringify({ token: setting, source: 'settings' } satisfies StoredRunnerToken));
    return { token: setting, source: 'settings' };
  }

  let note: string | undefined;
  if (stored) {
    if (stored.source === 'settings' || !stored.tokenId) {
      return { token: stored.token, runnerId: stored.runnerId, source: stored.source === 'settings' ? 'settings' : 'stored' };
    }
    // A token this extension made: still there and not revoked? (A restarted local AppHost with a new database, or a
    // revoke in the web UI, leaves a stored token the broker refuses.) When the list cannot be read, use it as is.
    let tokens: RunnerTokenInfo[] | undefined;
    try {
      tokens = await o.api.listRunnerTokens();
    } catch {
      tokens = undefined;
    }
    const current = tokens?.find((t) => t.id === stored.tokenId);
    if (!tokens || (current && !current.revokedAt)) {
      return { token: stored.token, runnerId: stored.runnerId, source: 'stored' };
    }
    await o.secrets.delete(key);
    note = `The runner token VS Code made earlier (${stored.name ?? stored.tokenId}) was ${current ? 'revoked' : 'not found on this server'}; made a new one.`;
  }

  const name = runnerTokenName(o.hostname);
  const requestedId = runnerIdFromName(name);
  let created: CreatedRunnerToken;
  try {
    created = await o.api.createRunnerToken({ name, runnerId: requestedId });
  } catch (e) {
    // Runner ids are per server: another user there may have a runner of this machine's name ("That runner id is
    // taken"). Without an id, the server binds the token to a free one made from the name.
    if (!(e instanceof ApiError && e.status === 400 && e.problem?.errors?.runnerId)) throw explain(e);
    try {
      created = await o.api.createRunnerToken({ name });
    } catch (again) {
      throw explain(again);
    }
  }
  if (!created || typeof created.token !== 'string' || !created.token) {
    throw new RunnerTokenError('SentryVibe answered POST /api/runners/tokens without a token.', 'settings');
  }
  const runnerId = typeof created.runnerId === 'string' && created.runnerId ? created.runnerId : undefined;
  const record: StoredRunnerToken = { token: created.token, source: 'created', tokenId: created.id, name: created.name ?? name, runnerId };
  await o.secrets.store(key, JSON.stringify(record));
  return { token: created.token, runnerId, source: 'created', note };
}

/** Forgets the runner token kept for a server (Sign Out). */
export async function forgetRunnerToken(secrets: SecretStore, webUrl: string): Promise<void> {
  await secrets.delete(runnerTokenSecretKey(webUrl));
}

const MANUAL =
  'Make a runner token in the SentryVibe web UI (Runners → New token) and put it in the "sentryvibe.runner.token" user setting (VS Code moves it into its secret storage)';

function explain(e: unknown): RunnerTokenError {
  if (e instanceof ApiError) {
    if (e.status === 401 || e.status === 403) {
      return new RunnerTokenError(
        `SentryVibe did not let this API token make a runner token (HTTP ${e.status}). ${MANUAL}, or sign in with a token that may make runner tokens.`,
        'settings',
      );
    }
    if (e.status === 404 || e.status === 405) {
      return new RunnerTokenError(`This SentryVibe cannot make runner tokens through its API (HTTP ${e.status}). ${MANUAL}.`, 'settings');
    }
    return new RunnerTokenError(`SentryVibe refused to make a runner token: ${e.message} ${MANUAL}.`, 'settings');
  }
  if (e instanceof UnreachableError) return new RunnerTokenError(`Could not make a runner token: ${e.message}`);
  return new RunnerTokenError(`Could not make a runner token: ${e instanceof Error ? e.message : String(e)}`);
}
