// package.json and extension.ts must agree: every contributed command is registered and vice versa.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { MACHINE_SETTINGS, machineSetting } from '../src/core/settings';

// Compiled to out-test/test/, run from there: the package root is two levels up.
const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  main: string;
  engines: { vscode: string };
  devDependencies: Record<string, string>;
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    menus: Record<string, { command: string }[]>;
    views: Record<string, { id: string }[]>;
    configuration: { properties: Record<string, unknown> };
  };
};
const source = fs.readFileSync(path.join(root, 'src', 'extension.ts'), 'utf8');
const registered = [...source.matchAll(/registerCommand\(\s*['"`]([^'"`]+)['"`]/g)].map((m) => m[1]!);
const contributed = pkg.contributes.commands.map((c) => c.command);

describe('package.json manifest', () => {
  it('Contributes_every_command_that_extension_ts_registers_and_no_other', () => {
    assert.ok(registered.length > 0, 'found registerCommand calls');
    assert.deepEqual([...registered].sort(), [...contributed].sort());
    assert.equal(new Set(registered).size, registered.length, 'no command registered twice');
  });

  it('Names_commands_and_settings_under_sentryvibe', () => {
    for (const c of pkg.contributes.commands) {
      assert.match(c.command, /^sentryvibe\.[a-zA-Z]+$/);
      assert.equal(c.category, 'SentryVibe');
    }
    for (const key of Object.keys(pkg.contributes.configuration.properties)) assert.match(key, /^sentryvibe\./);
    for (const key of ['sentryvibe.webUrl', 'sentryvibe.apiToken', 'sentryvibe.runner.command', 'sentryvibe.runner.brokerUrl', 'sentryvibe.runner.token', 'sentryvibe.runner.workspace']) {
      assert.ok(key in pkg.contributes.configuration.properties, key);
    }
  });

  it('Menus_point_only_at_contributed_commands_and_the_tree_view_is_registered', () => {
    for (const [menu, items] of Object.entries(pkg.contributes.menus)) {
      for (const item of items) assert.ok(contributed.includes(item.command), `${menu} → ${item.command}`);
    }
    const views = Object.values(pkg.contributes.views).flat().map((v) => v.id);
    for (const id of views) assert.ok(source.includes(`'${id}'`), `view ${id} has a provider in extension.ts`);
  });

  it('Pins_dev_dependencies_exactly_and_matches_types_vscode_to_the_engine', () => {
    for (const [name, version] of Object.entries(pkg.devDependencies)) assert.match(version, /^\d+\.\d+\.\d+$/, `${name}@${version}`);
    assert.equal(`^${pkg.devDependencies['@types/vscode']}`, pkg.engines.vscode);
    assert.equal(pkg.main, './dist/extension.js');
  });

  it('Keeps_vscode_out_of_the_core_modules', () => {
    const core = path.join(root, 'src', 'core');
    for (const file of fs.readdirSync(core)) {
      const text = fs.readFileSync(path.join(core, file), 'utf8');
      assert.doesNotMatch(text, /from ['"]vscode['"]|require\(['"]vscode['"]\)/, file);
    }
  });
});

describe('settings a workspace cannot set', () => {
  const props = pkg.contributes.configuration.properties as Record<string, { scope?: string; type?: string }>;

  it('Makes_every_setting_that_names_a_url_command_folder_domain_or_token_machine_scoped', () => {
    for (const key of MACHINE_SETTINGS) assert.equal(props[`sentryvibe.${key}`]?.scope, 'machine', `sentryvibe.${key}`);
    // Anything that looks like one of those must be in the list too.
    for (const [key, value] of Object.entries(props)) {
      if (/url|command|token|workspace|domain|path|home/i.test(key)) {
        assert.ok((MACHINE_SETTINGS as readonly string[]).includes(key.replace(/^sentryvibe\./, '')), `${key} is in MACHINE_SETTINGS`);
        assert.equal(value.scope, 'machine', key);
      }
    }
  });

  it('Reads_those_settings_from_user_settings_or_the_default_never_a_workspace', () => {
    assert.equal(machineSetting({ defaultValue: 'sentryvibe-runner', workspaceValue: '/tmp/evil.sh', workspaceFolderValue: '/tmp/evil2.sh' }), 'sentryvibe-runner');
    assert.equal(machineSetting({ defaultValue: '', globalValue: 'http://localhost:5080', workspaceValue: 'https://attacker.example' }), 'http://localhost:5080');
    assert.equal(machineSetting(undefined), undefined);
  });
});
