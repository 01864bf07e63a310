/** API keys' expiry and scopes: what the create form sends and how the list shows them. */
import type { components } from './api/schema';

type Schemas = components['schemas'];
export type KeyCreateBody = Schemas['KeyCreate'];
export type KeyScopes = Schemas['KeyScopesOut'];
export type EndpointGroup = NonNullable<Schemas['KeyScopesIn']['endpoints']>[number];

/** The endpoint groups of the OpenAI-compatible API a key can be limited to. */
export const ENDPOINT_GROUPS: { value: EndpointGroup; label: string }[] = [
  { value: 'chat', label: 'Chat completions' },
  { value: 'responses', label: 'Responses' },
  { value: 'conversations', label: 'Conversations' },
  { value: 'embeddings', label: 'Embeddings' },
  { value: 'audio', label: 'Audio' },
  { value: 'images', label: 'Images' },
  { value: 'models', label: 'Model list' },
];

export type ExpiryChoice = 'never' | '30' | '90' | 'date';

/** Comma- or newline-separated names, trimmed, without blanks or repeats. */
export function parseList(text: string): string[] {
  return [...new Set(text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean))];
}

/** When a key made now with this choice expires (ISO), `null` for never; `undefined`
 * when the choice is a date that is missing or not in the future. A picked date
 * means the end of that day, local time. */
export function expiryFor(choice: ExpiryChoice, date: string, now: Date = new Date()): string | null | undefined {
  if (choice === 'never') return null;
  if (choice === 'date') {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
    const [y, m, d] = date.split('-').map(Number);
    const end = new Date(y, m - 1, d, 23, 59, 59);
    return end.getTime() > now.getTime() ? end.toISOString() : undefined;
  }
  return new Date(now.getTime() + Number(choice) * 86_400_000).toISOString();
}

/** The body of `POST /api/keys`. */
export function createBody(
  name: string,
  expiresAt: string | null,
  endpoints: EndpointGroup[],
  models: string,
  assistants: string,
  projects: string[],
): KeyCreateBody {
  const scopes = {
    endpoints,
    models: parseList(models),
    assistants: parseList(assistants),
    projects: [...new Set(projects)],
  };
  const limited = Object.values(scopes).some((list) => list.length > 0);
  return { name: name.trim(), expires_at: expiresAt, scopes: limited ? scopes : null };
}

/** A key's limits in a few words ("Everything" when it has none); projects by
 * name when `projectNames` knows them. */
export function describeScopes(scopes: KeyScopes, projectNames: Record<string, string> = {}): string {
  const parts: string[] = [];
  if (scopes.endpoints.length) {
    const labels = scopes.endpoints.map((e) => ENDPOINT_GROUPS.find((g) => g.value === e)?.label ?? e);
    parts.push(labels.join(', '));
  }
  if (scopes.models.length) parts.push(`models: ${scopes.models.join(', ')}`);
  if (scopes.assistants.length) parts.push(`assistants: ${scopes.assistants.join(', ')}`);
  if (scopes.projects.length) parts.push(`projects: ${scopes.projects.map((p) => projectNames[p] ?? p).join(', ')}`);
  return parts.length ? parts.join('; ') : 'Everything';
}

/** Whether a key's expiry has passed. */
export function isExpired(expiresAt: string | null | undefined, now: Date = new Date()): boolean {
  return !!expiresAt && new Date(expiresAt).getTime() <= now.getTime();
}

/** A first request to paste into a shell with a new key: this server's Responses API. */
export function tryItCommand(origin: string, key: string): string {
  return [
    `curl ${origin}/v1/responses \\`,
    `  -H "Authorization: Bearer ${key}" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '{"model": "parley", "input": "Hello from the API"}'`,
  ].join('\n');
}
