// The New Project wizard's choices after the prompt: template (built-in or a git repository), agent, runner.
import * as vscode from 'vscode';
import { AGENTS, type Agent, type Template } from '../core/api';
import { ApiError, UnreachableError, type SentryVibeClient } from '../core/client';
import type { ConnectionManager } from './connection';
import type { RunnerManager } from './runner';

const AGENT_INFO: Record<Agent, string> = {
  'claude-code': 'Claude Code CLI on the runner (default when installed)',
  codex: 'OpenAI Codex CLI on the runner',
  anthropic: 'Anthropic API (ANTHROPIC_API_KEY on the runner)',
  none: 'Scaffold the template only, no agent',
};

const GIT_TEMPLATE = 'git:';

/** A built-in template id ("auto" lets the server choose) or a git URL; undefined = cancelled. */
export async function pickTemplate(
  client: SentryVibeClient,
  connection: ConnectionManager,
  output: vscode.OutputChannel,
): Promise<{ templateId?: string; templateUrl?: string } | undefined> {
  let templates: Template[] = [];
  try {
    templates = await client.listTemplates();
  } catch (e) {
    if (e instanceof UnreachableError || (e instanceof ApiError && (e.status === 401 || e.status === 403))) {
      await connection.explain(e);
      return undefined;
    }
    output.appendLine(`Could not list templates: ${(e as Error).message}`);
  }
  const items: (vscode.QuickPickItem & { id: string })[] = [
    { id: 'auto', label: '$(sparkle) auto', description: 'Choose the template that fits the prompt best' },
    ...templates.map((t) => ({ id: t.id, label: t.name || t.id, description: [t.framework, t.id].filter(Boolean).join(' · '), detail: t.description })),
    { id: GIT_TEMPLATE, label: '$(repo) From a git repository…', description: 'Any git URL, or a folder on the runner' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'SentryVibe: New Project (2/3): template', ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true });
  if (!pick) return undefined;
  if (pick.id !== GIT_TEMPLATE) return { templateId: pick.id };
  const url = await vscode.window.showInputBox({
    title: 'SentryVibe: New Project (2/3): git repository',
    prompt: 'The repository to start from; the runner clones it',
    placeHolder: 'https://github.com/you/starter.git',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : 'Give a git URL or a folder on the runner'),
  });
  return url ? { templateUrl: url.trim() } : undefined;
}

/** The configured default agent, else the user's pick; undefined = cancelled. */
export async function pickAgent(): Promise<Agent | undefined> {
  const configured = vscode.workspace.getConfiguration('sentryvibe').get<string>('defaultAgent');
  if (configured && (AGENTS as readonly string[]).includes(configured)) return configured as Agent;
  const pick = await vscode.window.showQuickPick(
    AGENTS.map((a) => ({ label: a, description: AGENT_INFO[a], agent: a })),
    { title: 'SentryVibe: New Project (3/3): agent', ignoreFocusOut: true },
  );
  return pick?.agent;
}

/** undefined = let the server choose (one runner or none online); null = cancelled. */
export async function pickRunner(runners: RunnerManager): Promise<string | undefined | null> {
  const online = runners.online;
  if (online.length <= 1) return undefined;
  const pick = await vscode.window.showQuickPick(
    online.map((r) => ({ label: r.name ?? r.id, description: [r.id, r.version].filter(Boolean).join(' · '), id: r.id })),
    { title: 'Build on which runner?', ignoreFocusOut: true },
  );
  return pick ? pick.id : null;
}
