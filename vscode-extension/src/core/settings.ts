// Settings that name a URL, a command, a folder, a domain or a credential decide where tokens go and what runs, so
// a workspace must not set them: a cloned repository's .vscode/settings.json could otherwise point the extension at
// another server or make "Start Runner" run its own program. package.json gives them `"scope": "machine"` (VS Code
// then ignores workspace values); the extension also reads them through `machineSetting`, which never looks at a
// workspace value either, so the rule holds even where a scope is missing. See docs/security.md.

/** Keys under `sentryvibe.` that only user (machine) settings may set. test/manifest.test.ts keeps package.json in step. */
export const MACHINE_SETTINGS = [
  'webUrl',
  'apiToken',
  'previewDomain',
  'runner.command',
  'runner.brokerUrl',
  'runner.token',
  'runner.workspace',
] as const;

export type MachineSetting = (typeof MACHINE_SETTINGS)[number];

/** The shape of `WorkspaceConfiguration.inspect(key)` that matters here. */
export interface SettingInspection<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** The user's value, else the default; workspace and folder values are ignored. */
export function machineSetting<T>(inspection: SettingInspection<T> | undefined): T | undefined {
  return inspection?.globalValue ?? inspection?.defaultValue;
}
