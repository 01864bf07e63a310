// Files and knowledge: uploads (with progress), status, passages, collections.
// Mirrors docs/ARCHITECTURE.md, "Files and knowledge".
import { ApiError, buildHeaders, request } from './api/client';
import type { Collection, CollectionList, ConversationKnowledge, FileSource, MessageSource, Passage, StoredFile, StoredFileList, UploadedFile } from './api/types';

const enc = encodeURIComponent;

export const TERMINAL: ReadonlySet<string> = new Set(['ready', 'failed']);

/** File sources of a message's sources list (others, like web pages, are left out). */
export function fileSources(sources: readonly MessageSource[] | null | undefined): FileSource[] {
  return (sources ?? []).filter((s): s is FileSource => s.kind === 'file');
}

/** The cited ones (with a [n] number), ordered by number. */
export function citedSources(sources: readonly MessageSource[] | null | undefined): FileSource[] {
  return fileSources(sources)
    .filter((s) => typeof s.ref === 'number')
    .sort((a, b) => (a.ref ?? 0) - (b.ref ?? 0));
}

/** "report.pdf, p. 3 — Results" */
export function sourceLabel(s: Pick<FileSource, 'filename' | 'page' | 'section'>): string {
  let label = s.filename;
  if (s.page != null) label += `, p. ${s.page}`;
  if (s.section) label += ` — ${s.section}`;
  return label;
}

/** What a status chip says. */
export function statusLabel(f: Pick<StoredFile, 'status' | 'progress' | 'error' | 'pages' | 'pages_done'>): string {
  switch (f.status) {
    case 'queued':
      return 'Queued';
    case 'parsing':
      return f.pages ? `Reading page ${f.pages_done}/${f.pages}` : 'Reading';
    case 'embedding':
      return `Indexing ${Math.round(f.progress * 100)}%`;
    case 'ready':
      return 'Ready';
    case 'failed':
      return f.error ? `Failed: ${f.error}` : 'Failed';
    default:
      return f.status;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Split text into plain runs and [n] citations whose number is in `refs`. */
export function splitCitations(text: string, refs: ReadonlySet<number>): Array<string | number> {
  const out: Array<string | number> = [];
  const re = /\[(\d{1,3})\]/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const n = Number(m[1]);
    if (!refs.has(n)) continue;
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(n);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Upload one file; `onProgress` gets 0..1 while the bytes are sent. */
export function uploadFile(
  file: File,
  target: { conversation_id?: string; collection_id?: string },
  onProgress?: (fraction: number) => void,
): Promise<UploadedFile> {
  const form = new FormData();
  form.append('file', file, file.name);
  if (target.conversation_id) form.append('conversation_id', target.conversation_id);
  if (target.collection_id) form.append('collection_id', target.collection_id);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/files');
    xhr.withCredentials = true;
    buildHeaders('POST', false).forEach((value, key) => xhr.setRequestHeader(key, value));
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError(0, { status: 0, title: 'Network error', detail: 'The upload failed: check your connection.' }));
    xhr.onload = () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(xhr.responseText) as Record<string, unknown>;
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as unknown as UploadedFile);
      else
        reject(
          new ApiError(xhr.status, {
            status: xhr.status,
            title: typeof body.title === 'string' ? body.title : 'Upload failed',
            detail: typeof body.detail === 'string' ? body.detail : `The upload failed (${xhr.status}).`,
            code: typeof body.code === 'string' ? body.code : undefined,
          }),
        );
    };
    xhr.send(form);
  });
}

export const filesApi = {
  list: (params: { conversation_id?: string; collection_id?: string } = {}) => {
    const q = new URLSearchParams();
    if (params.conversation_id) q.set('conversation_id', params.conversation_id);
    if (params.collection_id) q.set('collection_id', params.collection_id);
    const s = q.toString();
    return request<StoredFileList>(`/api/files${s ? `?${s}` : ''}`);
  },
  get: (id: string) => request<StoredFile>(`/api/files/${enc(id)}`),
  remove: (id: string) => request<void>(`/api/files/${enc(id)}`, { method: 'DELETE' }),
  passage: (fileId: string, chunkId: number) => request<Passage>(`/api/files/${enc(fileId)}/chunks/${enc(String(chunkId))}`),
  contentUrl: (id: string) => `/api/files/${enc(id)}/content`,
  collections: () => request<CollectionList>('/api/collections'),
  createCollection: (name: string, description = '') => request<Collection>('/api/collections', { method: 'POST', body: { name, description } }),
  removeCollection: (id: string) => request<void>(`/api/collections/${enc(id)}`, { method: 'DELETE' }),
  /** What a conversation draws on: its uploads, attached collections and library files. */
  conversationKnowledge: (conversationId: string) => request<ConversationKnowledge>(`/api/conversations/${enc(conversationId)}/knowledge`),
  /** Attach (PUT) or detach (DELETE) a collection or a library file by reference. */
  link: (conversationId: string, kind: 'collection' | 'file', id: string, method: 'PUT' | 'DELETE') =>
    request<void>(`/api/conversations/${enc(conversationId)}/${kind === 'collection' ? 'collections' : 'files'}/${enc(id)}`, { method }),
};
