// Shapes of the public Web API (README.md, "Web UI": the endpoints). Optional members are optional on purpose:
// the contract grows by adding fields, and the extension must not break on an older server.

export type ProjectStatus = 'pending' | 'building' | 'ready' | 'failed' | 'cancelled';
export type DevServerStatus = 'stopped' | 'starting' | 'running' | 'failed';
export type Agent = 'claude-code' | 'codex' | 'anthropic' | 'none';
export const AGENTS: readonly Agent[] = ['claude-code', 'codex', 'anthropic', 'none'];

export interface Todo {
  content: string;
  status: 'pending' | 'in_progress' | 'completed' | string;
  activeForm?: string | null;
}

export interface DevServer {
  status: DevServerStatus | string;
  port?: number | null;
  previewUrl?: string | null;
  provider?: string | null;
  reason?: string | null;
  exitCode?: number | null;
  lastLines?: string[] | null;
}

export interface Project {
  id: string;
  slug: string;
  name?: string;
  prompt?: string;
  status: ProjectStatus | string;
  statusReason?: string | null;
  templateId?: string | null;
  runnerId?: string | null;
  agent?: string | null;
  path?: string | null;
  runCommand?: string | null;
  framework?: string | null;
  todos?: Todo[] | null;
  devServer?: DevServer | null;
  lastEventId?: number | null;
  createdAt?: string;
  updatedAt?: string;
}

export interface Template {
  id: string;
  name: string;
  description?: string;
  framework?: string;
}

export interface Runner {
  id: string;
  name?: string | null;
  status: 'online' | 'offline' | string;
  lastSeenAt?: string | null;
  version?: string | null;
}

export interface CreateProjectRequest {
  prompt: string;
  templateId?: string;
  /** A git repository (https://, ssh://, git@host:path, file:// or a folder on the runner) instead of a template id. */
  templateUrl?: string;
  agent?: Agent;
  runnerId?: string;
}

/** GET /api/account: who the bearer token speaks for (docs/accounts.md). */
export interface Account {
  id: string;
  name: string;
  isOwner?: boolean;
}

/** RFC 9457 problem details, with ASP.NET's validation `errors` map. */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: Record<string, string[]>;
  [key: string]: unknown;
}

/** POST /api/runners/tokens. `runnerId` binds the token to one runner id on servers that support it (ignored by older ones). */
export interface CreateRunnerTokenRequest {
  name: string;
  runnerId?: string;
}

/** The one answer that holds the token itself; `runnerId` when the server bound it to one runner id. */
export interface CreatedRunnerToken {
  id: string;
  name: string;
  token: string;
  prefix?: string;
  createdAt?: string;
  runnerId?: string | null;
}

/** GET /api/runners/tokens: never the token, only its prefix. */
export interface RunnerTokenInfo {
  id: string;
  name: string;
  prefix?: string;
  createdAt?: string;
  revokedAt?: string | null;
  lastUsedAt?: string | null;
  runnerId?: string | null;
}
