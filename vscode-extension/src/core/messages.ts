// Messages between the preview webview and the extension. Both sides import these types, so a renamed
// field fails the build instead of silently doing nothing.
import type { PreviewView } from './previewModel';

/** Extension → webview. */
export type ToWebview =
  | { type: 'state'; view: PreviewView; title: string; /** asExternalUri form of the preview URL, for the iframe. */ frameUrl?: string }
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

const FROM_WEBVIEW = new Set<FromWebview['type']>([
  'ready', 'reload', 'open-in-browser', 'restart-dev-server', 'start-runner', 'show-output', 'retry',
]);

/** Webview content is untrusted input: accept only the known message shapes. */
export function isFromWebview(value: unknown): value is FromWebview {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    FROM_WEBVIEW.has((value as { type: FromWebview['type'] }).type)
  );
}
