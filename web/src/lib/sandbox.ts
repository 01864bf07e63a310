// Helpers for code-interpreter (run_python) tool steps: the code from the arguments,
// and attachments limited to the backend's own output route (never an arbitrary URL).
import type { ToolAttachment } from './api/types';

const OUTPUT_URL = /^\/api\/sandbox\/outputs\/[A-Za-z0-9_-]{1,64}$/;

/** The `code` argument of a run_python call ('' when absent or malformed). */
export function pythonCode(args: unknown): string {
  let value = args;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return '';
    }
  }
  if (value && typeof value === 'object' && 'code' in value) {
    const code = (value as { code: unknown }).code;
    return typeof code === 'string' ? code : '';
  }
  return '';
}

/** Attachments whose URL is Parley's output route, split into inline images and files. */
export function splitAttachments(list: ToolAttachment[] | undefined): { images: ToolAttachment[]; files: ToolAttachment[] } {
  const safe = (list ?? []).filter((a) => typeof a?.url === 'string' && OUTPUT_URL.test(a.url));
  return {
    images: safe.filter((a) => a.kind === 'image' && /^image\/(png|jpeg|gif)$/.test(a.media_type)),
    files: safe.filter((a) => !(a.kind === 'image' && /^image\/(png|jpeg|gif)$/.test(a.media_type))),
  };
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
