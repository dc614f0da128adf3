// Where the extension finds SentryVibe: explicit settings first, then the apphost.json a local AppHost writes,
// so that a developer who runs `dotnet run --project AppHost` needs no set-up at all.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface AppHostInfo {
  webUrl?: string;
  brokerUrl?: string;
  apiToken?: string;
  previewDomain?: string;
}

export interface ConnectionSettings {
  webUrl?: string;
  apiToken?: string;
  /**
   * The token "SentryVibe: Sign In" keeps for a server (secret storage, one per server: signIn.ts). Asked with the
   * resolved URL, so a token made for one server is never sent to another.
   */
  signedInToken?: (webUrl: string) => PromiseLike<string | undefined>;
  runnerBrokerUrl?: string;
  /** `sentryvibe.runner.token`: a runner token made in the web UI. Never defaults to the API token. */
  runnerToken?: string;
  /** `sentryvibe.previewDomain`: the preview domain of a remote SentryVibe (relay URLs live under it). */
  previewDomain?: string;
}

export interface Connection {
  webUrl: string;
  apiToken?: string;
  brokerUrl?: string;
  /**
   * The runner token from settings, if any. The API token is never used as a runner token: the broker refuses it,
   * and it would give the runner the API's whole power (docs/security.md). Start Runner makes a real runner token.
   */
  runnerToken?: string;
  previewDomain?: string;
  /** Where each part came from, for "not connected" explanations. */
  source: { webUrl: Source; apiToken: Source | 'none'; brokerUrl: Source | 'none' };
  appHostFile: string;
}

export type Source = 'settings' | 'secret' | 'apphost';

export function sentryVibeHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.SENTRYVIBE_HOME?.trim();
  if (fromEnv) return fromEnv;
  return path.join(env.HOME || env.USERPROFILE || os.homedir(), '.sentryvibe');
}

export function appHostFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(sentryVibeHome(env), 'apphost.json');
}

/** Reads apphost.json; undefined when it does not exist. A malformed file is an error worth showing. */
export async function readAppHost(file: string): Promise<AppHostInfo | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!json || typeof json !== 'object') throw new Error(`${file} does not hold a JSON object.`);
  const o = json as Record<string, unknown>;
  const str = (k: string) => (typeof o[k] === 'string' && (o[k] as string).trim() ? (o[k] as string).trim() : undefined);
  return { webUrl: str('webUrl'), brokerUrl: str('brokerUrl'), apiToken: str('apiToken'), previewDomain: str('previewDomain') };
}

export class NotConfiguredError extends Error {
  constructor(readonly appHostFile: string) {
    super(
      `SentryVibe is not configured: set "sentryvibe.webUrl" or start a local AppHost (dotnet run --project AppHost), which writes ${appHostFile}.`,
    );
    this.name = 'NotConfiguredError';
  }
}

/**
 * Settings win over apphost.json field by field. The token: the one signed in for this server (a personal token),
 * else the `sentryvibe.apiToken` setting, else the AppHost's API token (the owner's, for local use). The AppHost token
 * only pairs with the AppHost URL: a configured remote webUrl must not be sent the local AppHost's token.
 */
export async function resolveConnection(
  settings: ConnectionSettings,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const file = appHostFilePath(env);
  const appHost = await readAppHost(file);
  const configuredUrl = clean(settings.webUrl);
  const webUrl = configuredUrl ?? appHost?.webUrl;
  if (!webUrl) throw new NotConfiguredError(file);
  const sameAsAppHost = !configuredUrl || (appHost?.webUrl !== undefined && sameOrigin(configuredUrl, appHost.webUrl));

  const signedIn = clean(await settings.signedInToken?.(webUrl.replace(/\/+$/, '')));
  let apiToken: string | undefined;
  let tokenSource: Source | 'none' = 'none';
  if (signedIn) {
    apiToken = signedIn;
    tokenSource = 'secret';
  } else if (clean(settings.apiToken)) {
    apiToken = clean(settings.apiToken);
    tokenSource = 'settings';
  } else if (sameAsAppHost && appHost?.apiToken) {
    apiToken = appHost.apiToken;
    tokenSource = 'apphost';
  }

  let brokerUrl: string | undefined;
  let brokerSource: Source | 'none' = 'none';
  if (clean(settings.runnerBrokerUrl)) {
    brokerUrl = clean(settings.runnerBrokerUrl);
    brokerSource = 'settings';
  } else if (sameAsAppHost && appHost?.brokerUrl) {
    brokerUrl = appHost.brokerUrl;
    brokerSource = 'apphost';
  }

  return {
    webUrl: webUrl.replace(/\/+$/, ''),
    apiToken,
    brokerUrl,
    runnerToken: clean(settings.runnerToken),
    previewDomain: clean(settings.previewDomain) ?? (sameAsAppHost ? appHost?.previewDomain : undefined),
    source: { webUrl: configuredUrl ? 'settings' : 'apphost', apiToken: tokenSource, brokerUrl: brokerSource },
    appHostFile: file,
  };
}

function clean(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
