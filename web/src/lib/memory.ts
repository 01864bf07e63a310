// Memory: the /api/memories client, the sources an answer used, temporary chats.
import { buildHeaders, request } from './api/client';
import type {
  ConversationSource,
  ForgetRequest,
  MemoriesDeleted,
  Memory,
  MemoryHistory,
  MemoryList,
  MemorySource,
  Message,
} from './api/types';

type CitedSource = MemorySource | ConversationSource;

const enc = encodeURIComponent;

function query(p: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export const memoriesApi = {
  list: (p: { q?: string; status?: 'active' | 'pending' | ''; limit?: number; cursor?: string | null } = {}) =>
    request<MemoryList>(`/api/memories${query({ q: p.q, status: p.status, limit: p.limit ?? 50, cursor: p.cursor })}`),
  add: (text: string) => request<Memory>('/api/memories', { method: 'POST', body: { text } }),
  edit: (id: string, text: string) => request<Memory>(`/api/memories/${enc(id)}`, { method: 'PATCH', body: { text } }),
  remove: (id: string) => request<void>(`/api/memories/${enc(id)}`, { method: 'DELETE' }),
  removeAll: () => request<MemoriesDeleted>('/api/memories', { method: 'DELETE' }),
  approve: (id: string) => request<Memory>(`/api/memories/${enc(id)}/approve`, { method: 'POST' }),
  reject: (id: string) => request<void>(`/api/memories/${enc(id)}/reject`, { method: 'POST' }),
  history: (id: string) => request<MemoryHistory>(`/api/memories/${enc(id)}/history`),
  restore: (id: string, versionId: string) =>
    request<Memory>(`/api/memories/${enc(id)}/history/${enc(versionId)}/restore`, { method: 'POST' }),
};

/** The chat's "Forget these memories?" chip: a request recognised in the user's words. */
export const forgetApi = {
  get: (id: string) => request<ForgetRequest>(`/api/memories/forget-requests/${enc(id)}`),
  approve: (id: string) => request<ForgetRequest>(`/api/memories/forget-requests/${enc(id)}/approve`, { method: 'POST' }),
  cancel: (id: string) => request<ForgetRequest>(`/api/memories/forget-requests/${enc(id)}/cancel`, { method: 'POST' }),
  undo: (id: string) => request<ForgetRequest>(`/api/memories/forget-requests/${enc(id)}/undo`, { method: 'POST' }),
};

/** The forget requests an answer proposes (sources with `forget_proposed`), by request id. */
export function forgetProposals(sources: unknown): Map<string, MemorySource[]> {
  const found = new Map<string, MemorySource[]>();
  const list = Array.isArray(sources) ? sources.filter(isCited) : [];
  for (const s of list) {
    if (s.kind !== 'memory' || s.action !== 'forget_proposed' || !s.request) continue;
    const group = found.get(s.request) ?? [];
    if (!group.some((m) => m.id === s.id)) group.push(s);
    found.set(s.request, group);
  }
  return found;
}

function isCited(value: unknown): value is CitedSource {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return (v.kind === 'memory' || v.kind === 'conversation') && typeof v.id === 'string' && typeof v.title === 'string';
}

/** The memories and earlier conversations an answer used (from its stored `sources`). */
export function memorySources(message: Pick<Message, 'sources'>): { memories: MemorySource[]; conversations: ConversationSource[] } {
  const raw: unknown = message.sources;
  const list = Array.isArray(raw) ? raw.filter(isCited) : [];
  const seen = new Set<string>();
  const unique = list.filter((s) => {
    const key = `${s.kind}:${s.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    // Memories the turn changed (with an `action`) are the "Memory updated" chip, not "used".
    memories: unique.filter((s): s is MemorySource => s.kind === 'memory' && !s.action),
    conversations: unique.filter((s): s is ConversationSource => s.kind === 'conversation'),
  };
}

/** The memories a turn saved, changed or deleted: those of `sources` with an `action`
 * (the `memory_updated` event's list, kept in the stored answer's `sources`). */
export function memoryChanges(sources: unknown): MemorySource[] {
  const list = Array.isArray(sources) ? sources.filter(isCited) : [];
  const seen = new Map<string, MemorySource>();
  for (const s of list) {
    if (s.kind !== 'memory' || !s.action || s.action === 'forget_proposed') continue;
    const prior = seen.get(s.id);
    // One entry per memory: a real change wins over "already saved" (merged).
    if (!prior || prior.action === 'merged') seen.set(s.id, s);
  }
  return [...seen.values()];
}

/** The memory page, where the chip's link goes (the server sends it as `url`). */
export const MEMORY_PAGE = '/settings/memory';

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Only links to Parley's own conversations are followed (`/c/<id>`, with
 * `#m-<message id>` to open at the message a memory came from). */
export function conversationHref(id: string | null | undefined, messageId?: string | null): string | null {
  if (!id || !SAFE_ID.test(id)) return null;
  return messageId && SAFE_ID.test(messageId) ? `/c/${id}#m-${messageId}` : `/c/${id}`;
}

/** Delete a temporary chat when the user leaves it (also on page close: keepalive). */
export function discardTemporary(id: string, onPageClose = false): Promise<unknown> {
  if (onPageClose) {
    return fetch(`/api/conversations/${enc(id)}`, {
      method: 'DELETE',
      credentials: 'same-origin',
      keepalive: true,
      headers: buildHeaders('DELETE', false),
    }).catch(() => undefined);
  }
  return request<void>(`/api/conversations/${enc(id)}`, { method: 'DELETE' }).catch(() => undefined);
}

/** Why recall used a memory, in words (from the scores kept on the answer's source). */
export function whyReasons(why: NonNullable<MemorySource['why']>): string[] {
  const out: string[] = [];
  if (why.semantic >= 0.3) out.push('close in meaning to your question');
  else if (why.semantic >= 0.15) out.push('somewhat related in meaning');
  if (why.keyword > 0) out.push('shares words with your question');
  if (why.profile >= 0.2) out.push('part of your profile on this topic');
  else if (why.topic >= 0.3) out.push('on the same topic');
  if (!out.length) out.push('best of what was left above the floor');
  return [`#${why.rank}`, ...out];
}
