// The public REST API of SentryVibe Web, with the bearer token on every call and problem+json errors.
import type { Account, CreatedRunnerToken, CreateProjectRequest, CreateRunnerTokenRequest, ProblemDetails, Project, Runner, RunnerTokenInfo, Template } from './api';
import { parseEventMessage, type ProjectEvent, normalizeEvent } from './events';
import { followSse, type FetchLike, type FollowStatus } from './sse';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: ProblemDetails | undefined,
    readonly url: string,
    bodyText?: string,
  ) {
    super(ApiError.format(status, problem, url, bodyText));
    this.name = 'ApiError';
  }

  /** `detail`, else the validation errors, else the title: what a user should read. */
  static format(status: number, problem: ProblemDetails | undefined, url: string, bodyText?: string): string {
    // The server's 401 explains bearer headers to API users; in VS Code the fix is to sign in again.
    if (status === 401) return ApiError.refused(status);
    if (problem) {
      const parts: string[] = [];
      if (problem.detail) parts.push(problem.detail);
      const errors = problem.errors ? Object.entries(problem.errors) : [];
      for (const [field, messages] of errors) {
        for (const m of Array.isArray(messages) ? messages : [String(messages)]) parts.push(field ? `${field}: ${m}` : m);
      }
      if (parts.length === 0 && problem.title) parts.push(problem.title);
      if (parts.length > 0) return parts.join(' ');
    }
    if (status === 403) return ApiError.refused(status);
    if (status === 404) return `Not found: ${url}`;
    return `HTTP ${status} from ${url}${bodyText ? `: ${bodyText.slice(0, 200)}` : ''}`;
  }

  private static refused(status: number): string {
    return `SentryVibe refused the token (HTTP ${status}). Run "SentryVibe: Sign In" with a personal token from your account page.`;
  }
}

/** The Web app could not be reached at all (refused, DNS, timeout). */
export class UnreachableError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`Cannot reach SentryVibe at ${url}: ${describeCause(cause)}`);
    this.name = 'UnreachableError';
  }
}

export interface ClientOptions {
  webUrl: string;
  apiToken?: string;
  fetch?: FetchLike;
  /** Per-request timeout for plain (non-streaming) calls. */
  timeoutMs?: number;
  userAgent?: string;
}

export interface FollowEventsOptions {
  /** Resume after this sequence (exclusive); omitted = from the start of the log. */
  after?: number;
  onEvent(event: ProjectEvent): void;
  onStatus?(status: FollowStatus): void;
  signal?: AbortSignal;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export class SentryVibeClient {
  readonly webUrl: string;
  private readonly fetchImpl: FetchLike;

  constructor(private readonly options: ClientOptions) {
    this.webUrl = options.webUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  }

  url(path: string): string {
    return `${this.webUrl}${path.startsWith('/') ? '' : '/'}${path}`;
  }

  authHeaders(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.options.apiToken) h.Authorization = `Bearer ${this.options.apiToken}`;
    if (this.options.userAgent) h['User-Agent'] = this.options.userAgent;
    return h;
  }

  health(): Promise<boolean> {
    return this.fetchImpl(this.url('/health'), { signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000) })
      .then((r) => r.ok)
      .catch(() => false);
  }

  /** Who the token speaks for (GET /api/account); a server from before accounts answers 404. */
  getAccount(): Promise<Account> {
    return this.request<Account>('GET', '/api/account');
  }

  listTemplates(): Promise<Template[]> {
    return this.request<Template[]>('GET', '/api/templates');
  }

  listRunners(): Promise<Runner[]> {
    return this.request<Runner[]>('GET', '/api/runners');
  }

  /** Makes a runner token (POST /api/runners/tokens); the answer is the only time the token itself is seen. */
  createRunnerToken(request: CreateRunnerTokenRequest): Promise<CreatedRunnerToken> {
    const body: CreateRunnerTokenRequest = { name: request.name };
    if (request.runnerId) body.runnerId = request.runnerId;
    return this.request<CreatedRunnerToken>('POST', '/api/runners/tokens', body);
  }

  listRunnerTokens(): Promise<RunnerTokenInfo[]> {
    return this.request<RunnerTokenInfo[]>('GET', '/api/runners/tokens');
  }

  listProjects(): Promise<Project[]> {
    return this.request<Project[]>('GET', '/api/projects');
  }

  getProject(id: string): Promise<Project> {
    return this.request<Project>('GET', `/api/projects/${encodeURIComponent(id)}`);
  }

  createProject(request: CreateProjectRequest): Promise<Project> {
    const body: CreateProjectRequest = { prompt: request.prompt };
    if (request.templateUrl?.trim()) body.templateUrl = request.templateUrl.trim();
    else if (request.templateId && request.templateId !== 'auto') body.templateId = request.templateId;
    if (request.agent) body.agent = request.agent;
    if (request.runnerId) body.runnerId = request.runnerId;
    return this.request<Project>('POST', '/api/projects', body);
  }

  sendMessage(id: string, prompt: string): Promise<void> {
    return this.request<void>('POST', `/api/projects/${encodeURIComponent(id)}/messages`, { prompt });
  }

  startDevServer(id: string): Promise<void> {
    return this.request<void>('POST', `/api/projects/${encodeURIComponent(id)}/dev-server/start`);
  }

  stopDevServer(id: string): Promise<void> {
    return this.request<void>('POST', `/api/projects/${encodeURIComponent(id)}/dev-server/stop`);
  }

  deleteProject(id: string): Promise<void> {
    return this.request<void>('DELETE', `/api/projects/${encodeURIComponent(id)}`);
  }

  /** The stored events as JSON (not streamed). */
  async listEvents(id: string, after = 0): Promise<ProjectEvent[]> {
    const raw = await this.request<unknown[]>('GET', `/api/projects/${encodeURIComponent(id)}/events?after=${after}`);
    return (raw ?? []).map((e) => normalizeEvent(e)).filter((e): e is ProjectEvent => e !== undefined);
  }

  /** Follows the project's event stream until the signal aborts, resuming with Last-Event-ID after drops. */
  followEvents(id: string, options: FollowEventsOptions): Promise<void> {
    const after = options.after ?? 0;
    return followSse({
      url: this.url(`/api/projects/${encodeURIComponent(id)}/events${after > 0 ? `?after=${after}` : ''}`),
      headers: this.authHeaders(),
      lastEventId: after > 0 ? String(after) : undefined,
      fetch: this.fetchImpl,
      signal: options.signal,
      initialDelayMs: options.initialDelayMs,
      maxDelayMs: options.maxDelayMs,
      onStatus: options.onStatus,
      onMessage: (m) => {
        const e = parseEventMessage(m);
        if (e) options.onEvent(e);
      },
    });
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = this.url(path);
    const headers: Record<string, string> = { Accept: 'application/json', ...this.authHeaders() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (e) {
      throw new UnreachableError(this.webUrl, e);
    }
    const text = await response.text();
    if (!response.ok) {
      let problem: ProblemDetails | undefined;
      if (text) {
        try {
          const parsed = JSON.parse(text) as unknown;
          if (parsed && typeof parsed === 'object') problem = parsed as ProblemDetails;
        } catch {
          /* not JSON: the raw text goes into the message */
        }
      }
      throw new ApiError(response.status, problem, url, problem ? undefined : text);
    }
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      return undefined as T;
    }
  }
}

function describeCause(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as Error & { code?: string }).code;
      return code ? `${code} (${cause.message})` : cause.message;
    }
    if (e.name === 'TimeoutError') return 'timed out';
    return e.message;
  }
  return String(e);
}
