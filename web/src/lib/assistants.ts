// Assistants: the /api/assistants client and the builder's logic (a form's draft, the
// diff between versions in words). Mirrors docs/ARCHITECTURE.md, "Assistants".
import { ApiError, buildHeaders, problemOf, request } from './api/client';
import type {
  Assistant,
  AssistantConfig,
  AssistantDiff,
  AssistantFieldChange,
  AssistantList,
  AssistantVersion,
  AssistantVersionList,
  ChatAssistant,
  ChatStarted,
} from './api/types';

const enc = encodeURIComponent;

export const MAX_STARTERS = 4;

export const assistantsApi = {
  list: () => request<AssistantList>('/api/assistants'),
  get: (id: string) => request<Assistant>(`/api/assistants/${enc(id)}`),
  create: (config: AssistantConfig, slug?: string) =>
    request<Assistant>('/api/assistants', { method: 'POST', body: slug ? { config, slug } : { config } }),
  save: (id: string, config: AssistantConfig) =>
    request<Assistant>(`/api/assistants/${enc(id)}/versions`, { method: 'POST', body: { config } }),
  rename: (id: string, slug: string) => request<Assistant>(`/api/assistants/${enc(id)}`, { method: 'PATCH', body: { slug } }),
  remove: (id: string) => request<void>(`/api/assistants/${enc(id)}`, { method: 'DELETE' }),
  versions: (id: string) => request<AssistantVersionList>(`/api/assistants/${enc(id)}/versions`),
  restore: (id: string, n: number) => request<Assistant>(`/api/assistants/${enc(id)}/versions/${n}/restore`, { method: 'POST' }),
  publish: (id: string, version?: number) =>
    request<Assistant>(`/api/assistants/${enc(id)}/publish`, { method: 'POST', body: version ? { version } : {} }),
  diff: (id: string, from?: number, to?: number) => {
    const q = new URLSearchParams();
    if (from) q.set('from', String(from));
    if (to) q.set('to', String(to));
    const s = q.toString();
    return request<AssistantDiff>(`/api/assistants/${enc(id)}/diff${s ? `?${s}` : ''}`);
  },
  startChat: (id: string, preview = false) =>
    request<ChatStarted>(`/api/assistants/${enc(id)}/chats`, { method: 'POST', body: { preview } }),
  /** Upload an avatar image (PNG, JPEG, GIF or WebP, at most 256 KB): the body is the file. */
  setImage: async (id: string, file: Blob): Promise<Assistant> => {
    const res = await fetch(`/api/assistants/${enc(id)}/avatar`, {
      method: 'PUT',
      credentials: 'same-origin',
      headers: buildHeaders('PUT', false, { 'Content-Type': file.type || 'application/octet-stream' }),
      body: file,
    });
    if (!res.ok) throw new ApiError(res.status, problemOf(res.status, res.statusText, await res.text()));
    return (await res.json()) as Assistant;
  },
  clearImage: (id: string) => request<void>(`/api/assistants/${enc(id)}/avatar`, { method: 'DELETE' }),
  ofChat: (conversationId: string) => request<ChatAssistant>(`/api/conversations/${enc(conversationId)}/assistant`),
};

/** Every field present (the server's answers may leave defaults out). */
export interface Draft {
  name: string;
  avatar: string;
  description: string;
  instructions: string;
  starters: string[];
  model: string;
  collection_ids: string[];
  file_ids: string[];
  tools: string[];
  memory: 'off' | 'user' | 'scoped';
  temperature: number | null;
}

export function emptyDraft(): Draft {
  return {
    name: '',
    avatar: '',
    description: '',
    instructions: '',
    starters: [],
    model: '',
    collection_ids: [],
    file_ids: [],
    tools: [],
    memory: 'user',
    temperature: null,
  };
}

export function toDraft(config: AssistantConfig | null | undefined): Draft {
  const d = emptyDraft();
  if (!config) return d;
  return {
    name: config.name ?? d.name,
    avatar: config.avatar ?? d.avatar,
    description: config.description ?? d.description,
    instructions: config.instructions ?? d.instructions,
    starters: [...(config.starters ?? [])],
    model: config.model ?? d.model,
    collection_ids: [...(config.collection_ids ?? [])],
    file_ids: [...(config.file_ids ?? [])],
    tools: [...(config.tools ?? [])],
    memory: config.memory ?? d.memory,
    temperature: config.temperature ?? null,
  };
}

/** What Save sends: trimmed, empty starters dropped, at most four. */
export function toConfig(draft: Draft): AssistantConfig {
  return {
    ...draft,
    name: draft.name.trim(),
    avatar: draft.avatar.trim(),
    description: draft.description.trim(),
    starters: draft.starters.map((s) => s.trim()).filter(Boolean).slice(0, MAX_STARTERS),
    temperature: draft.temperature === null || Number.isNaN(draft.temperature) ? null : draft.temperature,
  };
}

/** Whether the form differs from the saved draft (Save is offered only then). */
export function isDirty(draft: Draft, saved: AssistantConfig | null | undefined): boolean {
  return JSON.stringify(toConfig(draft)) !== JSON.stringify(toConfig(toDraft(saved)));
}

/** Add or remove `id` from a list (checkboxes). */
export function toggled(list: readonly string[], id: string, on: boolean): string[] {
  const rest = list.filter((x) => x !== id);
  return on ? [...rest, id] : rest;
}

const FIELD_NAMES: Record<string, string> = {
  name: 'Name',
  avatar: 'Avatar',
  description: 'Description',
  model: 'Model',
  memory: 'Memory',
  temperature: 'Temperature',
  starters: 'Conversation starters',
  tools: 'Tools',
  collection_ids: 'Collections',
  file_ids: 'Files',
};

const MEMORY_NAMES: Record<string, string> = {
  off: 'off',
  user: 'your memories',
  scoped: 'its own memories',
};

function shown(field: string, value: unknown, names: (field: string, id: string) => string): string {
  if (value === null || value === undefined || value === '') {
    return field === 'model' ? 'the default model' : field === 'temperature' ? 'the default' : '(empty)';
  }
  if (field === 'memory') return MEMORY_NAMES[String(value)] ?? String(value);
  if (Array.isArray(value)) return value.map((v) => names(field, String(v))).join(', ') || '(none)';
  return String(value);
}

/** One line per change a person can read: "Tools: added Calculator; removed Run code". */
export function describeChange(
  change: AssistantFieldChange,
  names: (field: string, id: string) => string = (_f, id) => id,
): string {
  const label = FIELD_NAMES[change.field] ?? change.field;
  const added = change.added ?? [];
  const removed = change.removed ?? [];
  if (added.length || removed.length) {
    const parts: string[] = [];
    if (added.length) parts.push(`added ${added.map((id) => names(change.field, id)).join(', ')}`);
    if (removed.length) parts.push(`removed ${removed.map((id) => names(change.field, id)).join(', ')}`);
    return `${label}: ${parts.join('; ')}`;
  }
  if (Array.isArray(change.before) || Array.isArray(change.after)) return `${label}: reordered`;
  return `${label}: ${shown(change.field, change.before, names)} → ${shown(change.field, change.after, names)}`;
}

/** "Draft v3 · published v2", or "v2, published". */
export function versionStatus(a: Pick<Assistant, 'draft_version' | 'published_version'>): string {
  if (a.published_version === a.draft_version) return `Version ${a.draft_version}, published`;
  if (a.published_version == null) return `Draft version ${a.draft_version}, not published`;
  return `Draft version ${a.draft_version} · chats use version ${a.published_version}`;
}

/** The label of a version in the history list. */
export function versionLabel(v: Pick<AssistantVersion, 'number' | 'note' | 'published' | 'draft'>): string {
  const tags = [v.draft ? 'draft' : '', v.published ? 'published' : ''].filter(Boolean);
  return `Version ${v.number}${tags.length ? ` (${tags.join(', ')})` : ''}${v.note ? ` — ${v.note}` : ''}`;
}
