// Messages between the preview webview and the extension. Both sides import these types, so a renamed
// field fails the build instead of silently doing nothing. Both sides also check what arrives: the webview frames a
// page the runner serves, and that page can post messages too (docs/security.md).
import type { PreviewView } from './previewModel';

/** Extension → webview. */
export type ToWebview =
  | {
      type: 'state';
      view: PreviewView;
      title: string;
      /** asExternalUri form of the preview URL, for the iframe. */
      frameUrl?: string;
      /** The configured preview domain, so that the webview applies the same preview URL rule (previewUrls.ts). */
      relayDomain?: string;
    }
  | { type: 'reload' };

/** Webview → extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'reload' }
  | { type: 'open-in-browser' }
  | { type: 'restart-dev-server' }
  | { type: 'start-runner' }
  | { type: 'show-output' }
  | { type: 'retry' };

const FROM_WEBVIEW = new Set<string>(['ready', 'reload', 'open-in-browser', 'restart-dev-server', 'start-runner', 'show-output', 'retry']);

/** Webview content is untrusted input: accept only the known message shapes (a bare `{ type }`), nothing more. */
export function isFromWebview(value: unknown): value is FromWebview {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const type = (value as { type?: unknown }).type;
  return keys.length === 1 && typeof type === 'string' && FROM_WEBVIEW.has(type);
}

const VIEW_KINDS = new Set<string>([
  'loading', 'api-error', 'runner-offline', 'pending', 'building', 'installing', 'starting', 'running', 'unreachable', 'refused',
  'crashed', 'stopped', 'failed', 'cancelled',
]);

/** The webview's check of what reaches its message listener: a known type with the fields its renderer reads. */
export function isToWebview(value: unknown): value is ToWebview {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  if (m.type === 'reload') return true;
  if (m.type !== 'state') return false;
  const view = m.view as Record<string, unknown> | null | undefined;
  if (typeof view !== 'object' || view === null || typeof view.kind !== 'string' || !VIEW_KINDS.has(view.kind)) return false;
  if ((view.kind === 'running' || view.kind === 'unreachable' || view.kind === 'refused') && typeof view.previewUrl !== 'string') return false;
  if (typeof m.title !== 'string') return false;
  if (m.frameUrl !== undefined && typeof m.frameUrl !== 'string') return false;
  if (m.relayDomain !== undefined && typeof m.relayDomain !== 'string') return false;
  return true;
}
