// Typed client for Parley's native HTTP API. Cookie auth; CSRF header on writes.
import type {
  AdminPasswordResult,
  AdminSettings,
  AdminSettingsUpdate,
  AdminUserCreate,
  AdminUserUpdate,
  AuthConfig,
  Conversation,
  ConversationCreate,
  ConversationDetail,
  ConversationPage,
  ConversationUpdate,
  CreatedApiKey,
  FailoverOverview,
  PolicyClear,
  PolicyUpdate,
  RoutingOverview,
  TelemetryOut,
  TelemetryUpdate,
  Job,
  JobList,
  JobState,
  StorageSettings,
  ImportReport,
  KeyCreate,
  KeyList,
  LoginIn,
  Message,
  MessageUpdate,
  MeUpdate,
  ModelList,
  Problem,
  ProviderCreate,
  ProviderUpdate,
  ProviderInfo,
  ProviderList,
  ProviderTest,
  ProviderTestResult,
  SearchResults,
  SignupIn,
  UserEnvelope,
  UserList,
} from './types';
import type { AdminUsageSummary, ModelPrice, PriceIn, PriceList, UsageSummary } from '../usage';
import type { Budget, BudgetIn, BudgetList, ScopeChoices } from '../budgets';
import { CHAT_EVENT_TYPES, type ChatEvent } from './events';
import { readSSE } from '../sse';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  constructor(status: number, problem: Problem) {
    const detail = problem.detail || problem.title || `Request failed (${status})`;
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = problem.code || '';
    this.title = problem.title || '';
    this.detail = detail;
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
export const CSRF_COOKIE = 'parley_csrf';
export const CSRF_HEADER = 'X-CSRF-Token';

/** Read a cookie value by name from a cookie string (document.cookie). */
export function readCookie(name: string, cookieString: string = typeof document !== 'undefined' ? document.cookie : ''): string | null {
  for (const part of cookieString.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      const raw = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return null;
}

/** Build headers for a request: JSON content type and the CSRF token on writes. */
export function buildHeaders(method: string, hasJsonBody: boolean, extra?: HeadersInit): Headers {
  const h = new Headers(extra);
  if (hasJsonBody && !h.has('Content-Type')) h.set('Content-Type', 'application/json');
  if (!h.has('Accept')) h.set('Accept', 'application/json');
  if (UNSAFE.has(method.toUpperCase())) {
    const token = readCookie(CSRF_COOKIE);
    if (token) h.set(CSRF_HEADER, token);
  }
  return h;
}

type UnauthorizedHandler = (path: string) => void;
let onUnauthorized: UnauthorizedHandler | null = null;
/** Called for a 401 on any route except the auth probes (me, login, signup). */
export function setUnauthorizedHandler(fn: UnauthorizedHandler | null): void {
  onUnauthorized = fn;
}
const AUTH_PROBES = ['/api/auth/me', '/api/auth/login', '/api/auth/signup', '/api/auth/config', '/api/auth/logout'];

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  headers?: HeadersInit;
  /** Return the raw Response instead of parsed JSON. */
  raw?: boolean;
}

/** The problem document of an error answer's body (any text: JSON or not). */
export function problemOf(status: number, statusText: string, text: string): Problem {
  let problem: Problem = { status, title: statusText };
  try {
    if (text) {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object') {
        const p = parsed as Record<string, unknown>;
        problem = {
          ...problem,
          title: typeof p.title === 'string' ? p.title : problem.title,
          detail:
            typeof p.detail === 'string'
              ? p.detail
              : Array.isArray(p.detail)
                ? 'Invalid request.'
                : undefined,
          code: typeof p.code === 'string' ? p.code : undefined,
        };
      }
    }
  } catch {
    /* not JSON */
  }
  return problem;
}

async function toError(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* no body */
  }
  return new ApiError(res.status, problemOf(res.status, res.statusText, text));
}

/** POST a file as the raw request body, with upload progress (fetch has none).
 * `onProgress` gets 0..1 while the bytes are sent; the promise settles with the answer. */
export function postFile<T>(
  path: string,
  file: Blob,
  contentType: string,
  onProgress?: (fraction: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.withCredentials = true;
    buildHeaders('POST', false, { 'Content-Type': contentType }).forEach((value, key) => xhr.setRequestHeader(key, value));
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.upload.onload = () => onProgress?.(1);
    xhr.onerror = () =>
      reject(new ApiError(0, { status: 0, title: 'Network error', detail: 'The connection to the server was lost.' }));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as T);
        } catch {
          reject(new ApiError(xhr.status, { status: xhr.status, title: 'Bad answer', detail: 'The server sent an answer that is not JSON.' }));
        }
        return;
      }
      if (xhr.status === 401 && onUnauthorized) onUnauthorized(path);
      reject(new ApiError(xhr.status, problemOf(xhr.status, xhr.statusText, xhr.responseText)));
    };
    xhr.send(file);
  });
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const method = (opts.method || 'GET').toUpperCase();
  const hasBody = opts.body !== undefined;
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: buildHeaders(method, hasBody, opts.headers),
    body: hasBody ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  });
  if (!res.ok) {
    if (res.status === 401 && onUnauthorized && !AUTH_PROBES.some((p) => path.startsWith(p))) {
      onUnauthorized(path);
    }
    throw await toError(res);
  }
  if (opts.raw) return res as unknown as T;
  if (res.status === 204) return undefined as T;
  const ct = res.headers.get('Content-Type') || '';
  if (!ct.includes('json')) return (await res.text()) as unknown as T;
  return (await res.json()) as T;
}

export const enc = encodeURIComponent;

function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

// ---------------- Auth ----------------
export const auth = {
  config: () => request<AuthConfig>('/api/auth/config'),
  signup: (body: SignupIn) =>
    request<Response>('/api/auth/signup', { method: 'POST', body, raw: true }).then(async (res) => {
      const data = (await res.json()) as UserEnvelope;
      return { status: res.status, user: data.user };
    }),
  login: (body: LoginIn) => request<UserEnvelope>('/api/auth/login', { method: 'POST', body }),
  logout: () => request<void>('/api/auth/logout', { method: 'POST' }),
  me: () => request<UserEnvelope>('/api/auth/me'),
};

// ---------------- Me ----------------
export const me = {
  update: (body: MeUpdate) => request<UserEnvelope>('/api/me', { method: 'PATCH', body }),
  changePassword: (current_password: string, new_password: string) =>
    request<void>('/api/me/password', { method: 'POST', body: { current_password, new_password } }),
  exportUrl: '/api/me/export',
  /** The export as a download: JSON, or with `files` a ZIP with the files' bytes too. */
  exportData: (files = false) => request<Response>(`/api/me/export${files ? '?files=true' : ''}`, { raw: true }),
  /** Add an export (the JSON or the ZIP) to this account. */
  importData: (file: Blob, zip: boolean, onProgress?: (fraction: number) => void) =>
    postFile<ImportReport>('/api/me/import', file, zip ? 'application/zip' : 'application/json', onProgress),
  remove: (password: string) => request<void>('/api/me', { method: 'DELETE', body: { password } }),
};

// ---------------- Budgets and rate limits ----------------
export const budgets = {
  mine: () => request<BudgetList>('/api/me/budgets'),
  all: () => request<BudgetList>('/api/admin/budgets'),
  create: (body: BudgetIn) => request<Budget>('/api/admin/budgets', { method: 'POST', body }),
  update: (id: string, body: BudgetIn) =>
    request<Budget>(`/api/admin/budgets/${enc(id)}`, { method: 'PATCH', body }),
  remove: (id: string) => request<void>(`/api/admin/budgets/${enc(id)}`, { method: 'DELETE' }),
  /** The groups, users, projects or keys whose name (or owner's email) contains ``q``. */
  choices: (scope: Exclude<BudgetIn['scope'], 'instance'>, q = '') =>
    request<ScopeChoices>(`/api/admin/budgets/choices?scope=${enc(scope)}&q=${enc(q)}`),
};

// ---------------- Usage and prices ----------------
export const usage = {
  mine: (days: number) => request<UsageSummary>(`/api/me/usage${qs({ days })}`),
  all: (days: number) => request<AdminUsageSummary>(`/api/admin/usage${qs({ days })}`),
  prices: () => request<PriceList>('/api/admin/prices'),
  setPrice: (body: PriceIn) => request<ModelPrice>('/api/admin/prices', { method: 'PUT', body }),
  resetPrice: (model: string) =>
    request<ModelPrice>('/api/admin/prices/reset', { method: 'POST', body: { model } }),
};

export const keys = {
  list: () => request<KeyList>('/api/keys'),
  create: (body: KeyCreate) => request<CreatedApiKey>('/api/keys', { method: 'POST', body }),
  revoke: (id: string) => request<void>(`/api/keys/${enc(id)}`, { method: 'DELETE' }),
};

// ---------------- Models ----------------
export const models = {
  list: () => request<ModelList>('/api/models'),
};

// ---------------- Conversations ----------------
export const conversations = {
  list: (p: { limit?: number; cursor?: string | null; archived?: boolean } = {}) =>
    request<ConversationPage>(
      `/api/conversations${qs({ limit: p.limit ?? 50, cursor: p.cursor, archived: p.archived ?? false })}`,
    ),
  create: (body: ConversationCreate = {}) =>
    request<Conversation>('/api/conversations', { method: 'POST', body }),
  get: (id: string, signal?: AbortSignal) => request<ConversationDetail>(`/api/conversations/${enc(id)}`, { signal }),
  update: (id: string, body: ConversationUpdate) =>
    request<Conversation>(`/api/conversations/${enc(id)}`, { method: 'PATCH', body }),
  remove: (id: string) => request<void>(`/api/conversations/${enc(id)}`, { method: 'DELETE' }),
  branch: (id: string, message_id: string) =>
    request<ConversationDetail>(`/api/conversations/${enc(id)}/branch`, { method: 'POST', body: { message_id } }),
  stop: (id: string) => request<void>(`/api/conversations/${enc(id)}/stop`, { method: 'POST' }),
};

export const search = (q: string, limit = 20, signal?: AbortSignal) =>
  request<SearchResults>(`/api/search${qs({ q, limit })}`, { signal });

export const messages = {
  update: (id: string, body: MessageUpdate) =>
    request<Message>(`/api/messages/${enc(id)}`, { method: 'PATCH', body }),
};

// ---------------- Chat turns (SSE) ----------------
export type TurnRequest =
  | { kind: 'send'; conversationId: string; content: string; parent_id?: string | null; model?: string | null; web_search?: boolean | null }
  | { kind: 'regenerate'; conversationId: string; messageId: string; model?: string | null }
  | { kind: 'edit'; conversationId: string; messageId: string; content: string; model?: string | null; web_search?: boolean | null };

export function turnEndpoint(t: TurnRequest): { path: string; body: Record<string, unknown> } {
  const base = `/api/conversations/${enc(t.conversationId)}/messages`;
  const model = t.model ? { model: t.model } : {};
  // The composer's globe: sent only when the composer says (API clients keep the default).
  const search = t.kind !== 'regenerate' && t.web_search != null ? { web_search: t.web_search } : {};
  switch (t.kind) {
    case 'send':
      return { path: base, body: { content: t.content, ...(t.parent_id ? { parent_id: t.parent_id } : {}), ...model, ...search } };
    case 'regenerate':
      return { path: `${base}/${enc(t.messageId)}/regenerate`, body: { ...model } };
    case 'edit':
      return { path: `${base}/${enc(t.messageId)}/edit`, body: { content: t.content, ...model, ...search } };
  }
}

/** A chat event with the SSE `id` it came with (the reader's place in the turn). */
export type ChatEventWithId = ChatEvent & { id?: string };

async function* chatEvents(res: Response, signal: AbortSignal): AsyncGenerator<ChatEventWithId> {
  if (!res.body) throw new ApiError(502, { title: 'Empty response', detail: 'The server sent no stream.' });
  for await (const m of readSSE(res.body, signal)) {
    if (!CHAT_EVENT_TYPES.has(m.event)) continue;
    let data: unknown;
    try {
      data = JSON.parse(m.data);
    } catch {
      continue;
    }
    yield { type: m.event, data, id: m.id } as ChatEventWithId;
  }
}

/** Start a chat turn and yield its typed events. Throws ApiError for a non-2xx answer. */
export async function* streamTurn(t: TurnRequest, signal: AbortSignal): AsyncGenerator<ChatEventWithId> {
  const { path, body } = turnEndpoint(t);
  const res = await request<Response>(path, {
    method: 'POST',
    body,
    signal,
    raw: true,
    headers: { Accept: 'text/event-stream' },
  });
  yield* chatEvents(res, signal);
}

/** Reattach to an answer still being written: the events after `lastEventId` (all of
 * them, `start` included, when null), then the live ones, ending with `done`. */
export async function* reattachTurn(
  conversationId: string,
  messageId: string,
  lastEventId: string | null,
  signal: AbortSignal,
): AsyncGenerator<ChatEventWithId> {
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
  const res = await request<Response>(`/api/conversations/${enc(conversationId)}/messages/${enc(messageId)}/events`, {
    signal,
    raw: true,
    headers,
  });
  yield* chatEvents(res, signal);
}

// ---------------- Admin ----------------
export const admin = {
  users: () => request<UserList>('/api/admin/users'),
  createUser: (body: AdminUserCreate) => request<UserEnvelope>('/api/admin/users', { method: 'POST', body }),
  updateUser: (id: string, body: AdminUserUpdate) =>
    request<UserEnvelope>(`/api/admin/users/${enc(id)}`, { method: 'PATCH', body }),
  resetPassword: (id: string, password: string | null) =>
    request<AdminPasswordResult>(`/api/admin/users/${enc(id)}/password`, { method: 'POST', body: { password } }),
  deleteUser: (id: string, confirmEmail: string) =>
    request<void>(`/api/admin/users/${enc(id)}`, { method: 'DELETE', body: { confirm_email: confirmEmail } }),
  settings: () => request<AdminSettings>('/api/admin/settings'),
  updateSettings: (body: AdminSettingsUpdate) => request<AdminSettings>('/api/admin/settings', { method: 'PATCH', body }),
  providers: () => request<ProviderList>('/api/admin/providers'),
  addProvider: (body: ProviderCreate) =>
    request<ProviderInfo>('/api/admin/providers', { method: 'POST', body }),
  updateProvider: (name: string, body: ProviderUpdate) =>
    request<ProviderInfo>(`/api/admin/providers/${enc(name)}`, { method: 'PATCH', body }),
  deleteProvider: (name: string) => request<void>(`/api/admin/providers/${enc(name)}`, { method: 'DELETE' }),
  testProvider: (body: ProviderTest) =>
    request<ProviderTestResult>('/api/admin/providers/test', { method: 'POST', body }),
  testSavedProvider: (name: string) =>
    request<ProviderTestResult>(`/api/admin/providers/${enc(name)}/test`, { method: 'POST' }),
  failover: () => request<FailoverOverview>('/api/admin/failover'),
  /** `null`: back to the config file's list; `[]`: no fallbacks. */
  setFallbacks: (model: string, fallbacks: string[] | null) =>
    request<FailoverOverview>('/api/admin/failover/fallbacks', { method: 'PUT', body: { model, fallbacks } }),
  resetBreaker: (provider: string) =>
    request<FailoverOverview>('/api/admin/failover/breakers/reset', { method: 'POST', body: { provider } }),
  routing: () => request<RoutingOverview>('/api/admin/routing'),
  setRouting: (body: PolicyUpdate) => request<RoutingOverview>('/api/admin/routing', { method: 'PUT', body }),
  clearRouting: (scope: PolicyClear['scope'], scope_id = '') =>
    request<RoutingOverview>('/api/admin/routing/clear', { method: 'POST', body: { scope, scope_id } }),
  telemetry: () => request<TelemetryOut>('/api/admin/telemetry'),
  setTelemetry: (body: TelemetryUpdate) => request<TelemetryOut>('/api/admin/telemetry', { method: 'PUT', body }),
  jobs: (state: JobState | null = null) =>
    request<JobList>(state ? `/api/admin/jobs?state=${enc(state)}` : '/api/admin/jobs'),
  retryJob: (id: string) => request<Job>(`/api/admin/jobs/${enc(id)}/retry`, { method: 'POST' }),
  discardJob: (id: string) => request<void>(`/api/admin/jobs/${enc(id)}`, { method: 'DELETE' }),
  storage: () => request<StorageSettings>('/api/admin/storage'),
};

/** Message for an unknown thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.detail;
  if (e instanceof DOMException && e.name === 'AbortError') return 'Cancelled.';
  if (e instanceof TypeError) return 'Network error: the server could not be reached.';
  if (e instanceof Error) return e.message;
  return String(e);
}
