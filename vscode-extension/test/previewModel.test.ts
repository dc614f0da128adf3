import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Project } from '../src/core/api';
import { describeEvent, normalizeEvent, parseEventMessage, type ProjectEvent } from '../src/core/events';
import { PreviewModel } from '../src/core/previewModel';

const project = (over: Partial<Project> = {}): Project => ({
  id: 'p1',
  slug: 'todo-app',
  name: 'Todo App',
  status: 'building',
  runnerId: 'r1',
  todos: [],
  devServer: { status: 'stopped' },
  ...over,
});
const online = [{ id: 'r1', name: 'laptop', status: 'online' }];
let seq = 0;
const ev = (e: ProjectEvent): ProjectEvent => ({ ...e, seq: ++seq });

describe('event normalisation', () => {
  it('Reads_the_kebab_case_type_and_the_sse_id_as_sequence', () => {
    const e = parseEventMessage({ event: 'message', data: '{"type":"port-detected","port":5173,"previewUrl":"http://a.preview.localhost:5090"}', lastEventId: '12' });
    assert.deepEqual(e, { type: 'port-detected', port: 5173, previewUrl: 'http://a.preview.localhost:5090', seq: 12, timestamp: undefined });
  });

  it('Unwraps_an_envelope_and_falls_back_to_the_sse_event_name', () => {
    const e = normalizeEvent({ id: 5, type: 'agent-message', timestamp: '2026-01-01T00:00:00Z', data: { text: 'hello' } });
    assert.equal(e?.type, 'agent-message');
    assert.equal(e?.seq, 5);
    assert.equal((e as { text: string }).text, 'hello');
    const named = parseEventMessage({ event: 'build-log', data: '{"message":"npm install"}', lastEventId: '6' });
    assert.equal(named?.type, 'build-log');
  });

  it('Keeps_unknown_types_as_unknown_and_skips_non_json', () => {
    assert.equal(parseEventMessage({ event: 'message', data: '{"type":"something-new"}', lastEventId: '' })?.type, 'unknown');
    assert.equal(parseEventMessage({ event: 'message', data: 'ping', lastEventId: '' }), undefined);
  });

  it('Describes_tool_uses_todos_and_completion_for_the_output_channel', () => {
    assert.equal(describeEvent({ type: 'tool-use', toolUseId: 't', name: 'Write', inputSummary: 'src/App.tsx', status: 'succeeded', resultSummary: 'ok' }), '✓ Write src/App.tsx → ok');
    assert.equal(describeEvent({ type: 'todos-updated', todos: [{ content: 'A', status: 'completed' }, { content: 'B', status: 'in_progress' }] }), 'Todos:\n  ☑ A\n  ◐ B');
    assert.equal(describeEvent({ type: 'build-completed', turns: 2, durationMs: 4200, costUsd: 0.0123 }), '✔ Build completed in 2 turns, 4.2 s, $0.0123');
    assert.equal(describeEvent({ type: 'build-failed', reason: 'agent crashed' }), '✘ Build failed: agent crashed');
  });
});

describe('PreviewModel', () => {
  it('Shows_loading_until_the_snapshot_arrives', () => {
    assert.equal(new PreviewModel().view().kind, 'loading');
  });

  it('Shows_building_with_the_current_todo_and_counts', () => {
    const m = new PreviewModel();
    m.applySnapshot(project());
    m.setRunners(online);
    m.applyEvent(ev({ type: 'todos-updated', todos: [{ content: 'Scaffold', status: 'completed' }, { content: 'Add list', status: 'in_progress', activeForm: 'Adding the list' }, { content: 'Style', status: 'pending' }] }));
    m.applyEvent(ev({ type: 'tool-use', toolUseId: 'x', name: 'Edit', inputSummary: 'src/App.tsx', status: 'running' }));
    assert.deepEqual(m.view(), { kind: 'building', todo: 'Adding the list', done: 1, total: 3, activity: 'Edit src/App.tsx' });
    assert.equal(m.summary, 'building: Adding the list (1/3)');
  });

  it('Goes_through_installing_and_starting_with_the_last_log_line_to_running', () => {
    const m = new PreviewModel();
    m.applySnapshot(project());
    m.setRunners(online);
    m.applyEvent(ev({ type: 'build-completed', turns: 1 }));
    m.applyEvent(ev({ type: 'dev-server-starting', command: 'npm run dev', phase: 'installing' }));
    m.applyEvent(ev({ type: 'dev-server-log', line: 'added 120 packages' }));
    assert.deepEqual(m.view(), { kind: 'installing', lastLine: 'added 120 packages' });
    m.applyEvent(ev({ type: 'dev-server-starting', command: 'npm run dev', phase: 'starting' }));
    m.applyEvent(ev({ type: 'dev-server-log', line: 'VITE v7 ready' }));
    assert.deepEqual(m.view(), { kind: 'starting', phase: 'starting', lastLine: 'VITE v7 ready' });
    m.applyEvent(ev({ type: 'port-detected', port: 5173, previewUrl: 'http://abc.preview.localhost:5090' }));
    assert.deepEqual(m.view(), { kind: 'running', previewUrl: 'http://abc.preview.localhost:5090', port: 5173, building: undefined });
  });

  it('Shows_a_crash_with_exit_code_and_last_lines_but_a_requested_stop_as_stopped', () => {
    const m = new PreviewModel();
    m.applySnapshot(project({ status: 'ready', devServer: { status: 'running', port: 5173, previewUrl: 'http://a.localhost' } }));
    m.setRunners(online);
    m.applyEvent(ev({ type: 'dev-server-exited', exitCode: 1, lastLines: ['Error: Cannot find module x'] }));
    assert.deepEqual(m.view(), { kind: 'crashed', exitCode: 1, reason: undefined, lastLines: ['Error: Cannot find module x'] });
    m.applyEvent(ev({ type: 'dev-server-starting', command: 'npm run dev' }));
    m.applyEvent(ev({ type: 'port-detected', port: 5173, previewUrl: 'http://a.localhost' }));
    m.applyEvent(ev({ type: 'dev-server-exited', exitCode: 0, lastLines: [], reason: 'stopped' }));
    assert.equal(m.view().kind, 'stopped');
  });

  it('Says_the_runner_is_offline_rather_than_building_forever', () => {
    const m = new PreviewModel();
    m.applySnapshot(project());
    m.setRunners([{ id: 'r1', name: 'laptop', status: 'offline', lastSeenAt: '2026-01-01T00:00:00Z' }]);
    assert.deepEqual(m.view(), { kind: 'runner-offline', runnerName: 'laptop', lastSeenAt: '2026-01-01T00:00:00Z', projectStatus: 'building' });
  });

  it('Says_unreachable_when_the_preview_does_not_answer_and_recovers_on_a_new_port', () => {
    const m = new PreviewModel();
    m.applySnapshot(project({ status: 'ready', devServer: { status: 'running', previewUrl: 'http://a.localhost:1' } }));
    m.setRunners(online);
    m.setReachability({ ok: false, error: 'ECONNREFUSED' });
    assert.deepEqual(m.view(), { kind: 'unreachable', previewUrl: 'http://a.localhost:1', error: 'ECONNREFUSED' });
    m.applyEvent(ev({ type: 'port-detected', port: 2, previewUrl: 'http://a.localhost:2' }));
    assert.equal(m.view().kind, 'running');
  });

  it('Refuses_a_runner_reported_preview_url_outside_the_rule_and_never_hands_it_out', () => {
    const m = new PreviewModel();
    m.applySnapshot(project({ status: 'ready', devServer: { status: 'running', previewUrl: "javascript:parent.document.title='PWNED'//" } }));
    m.setRunners(online);
    assert.deepEqual(m.view(), { kind: 'refused', previewUrl: "javascript:parent.document.title='PWNED'//" });
    assert.equal(m.previewUrl, undefined, 'nothing to probe, frame or open');
    m.applyEvent(ev({ type: 'port-detected', port: 80, previewUrl: 'http://evil.com/' }));
    assert.equal(m.view().kind, 'refused');
    assert.equal(m.previewUrl, undefined);
    // A relay URL passes once the preview domain is known; an honest port-detected recovers.
    const relay = 'http://0123456789abcdef0123456789abcdef.preview.example.com/';
    m.applyEvent(ev({ type: 'port-detected', port: 5173, previewUrl: relay }));
    assert.equal(m.view().kind, 'refused');
    m.relayDomain = 'preview.example.com';
    assert.equal(m.view().kind, 'running');
    assert.equal(m.previewUrl, relay);
    assert.equal(describeEvent({ type: 'port-detected', port: 1, previewUrl: 'data:text/html,x' }), '🌐 Preview at (this preview address was refused) (port 1)');
  });

  it('Shows_build_failure_and_api_errors', () => {
    const m = new PreviewModel();
    m.applySnapshot(project());
    m.setRunners(online);
    m.applyEvent(ev({ type: 'build-failed', reason: 'claude not installed' }));
    assert.deepEqual(m.view(), { kind: 'failed', reason: 'claude not installed' });
    m.setApiError('Cannot reach SentryVibe');
    assert.equal(m.view().kind, 'api-error');
  });

  it('Keeps_the_preview_running_during_a_follow_up_build_with_a_banner', () => {
    const m = new PreviewModel();
    m.applySnapshot(project({ status: 'ready', devServer: { status: 'running', previewUrl: 'http://a.localhost' } }));
    m.setRunners(online);
    m.applyEvent(ev({ type: 'build-started', turn: 2 }));
    m.applyEvent(ev({ type: 'todos-updated', todos: [{ content: 'Dark mode', status: 'in_progress' }] }));
    const v = m.view();
    assert.equal(v.kind, 'running');
    assert.equal(v.kind === 'running' ? v.building?.todo : undefined, 'Dark mode');
  });

  it('Ignores_replayed_events_after_a_reconnect', () => {
    const m = new PreviewModel();
    m.applySnapshot(project({ lastEventId: 10 }));
    assert.equal(m.applyEvent({ type: 'build-failed', reason: 'old', seq: 9 }), false);
    assert.equal(m.applyEvent({ type: 'build-log', message: 'new', seq: 11 }), true);
    assert.equal(m.projectStatus, 'building');
  });
});

describe('event shape of SentryVibe Web', () => {
  it('Reads_the_log_row_with_the_typed_body_under_data', () => {
    const data = JSON.stringify({ id: 42, type: 'tool-use', projectId: 'p1', timestamp: '2026-11-25T21:00:00Z', data: { type: 'tool-use', toolUseId: 'tu1', name: 'Write', inputSummary: 'src/App.tsx', status: 'running' } });
    const e = parseEventMessage({ event: 'tool-use', data, lastEventId: '42' });
    assert.equal(e?.type, 'tool-use');
    assert.equal(e?.seq, 42);
    assert.equal(e?.timestamp, '2026-11-25T21:00:00Z');
    assert.equal(e?.type === 'tool-use' ? `${e.name} ${e.inputSummary} ${e.status}` : '', 'Write src/App.tsx running');
  });
});
