// The first-run setup: connect a real model (a hosted API with a key, or a model
// server found on this machine), and the words the app uses about the demo starter
// model. Providers are added through the existing admin API
// (`POST /api/admin/providers/test`, `POST /api/admin/providers`).
import { admin, me, request } from './api/client';
import type { components } from './api/schema';
import type { LocalStatus, ModelInfo, ModelList, User } from './api/types';

export type LocalServer = components['schemas']['LocalServer'];
export type LocalServerList = components['schemas']['LocalServerList'];

export const setupApi = {
  localServers: () => request<LocalServerList>('/api/admin/setup/local-servers'),
};

/** A hosted provider the setup offers; `other` takes any OpenAI-compatible URL. */
export interface HostedChoice {
  id: 'openai' | 'anthropic' | 'openrouter' | 'other';
  label: string;
  kind: 'openai' | 'anthropic';
  baseUrl: string | null;
  keyHint: string;
  keyUrl: string | null;
  /** A model to preselect when the provider lists it. */
  suggested: string[];
}

export const HOSTED: HostedChoice[] = [
  {
    id: 'openai',
    label: 'OpenAI',
    kind: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    keyHint: 'sk-…',
    keyUrl: 'https://platform.openai.com/api-keys',
    suggested: ['gpt-4.1-mini', 'gpt-4o-mini', 'gpt-4.1'],
  },
  {
    id: 'anthropic',
    label: 'Anthropic',
    kind: 'anthropic',
    baseUrl: null,
    keyHint: 'sk-ant-…',
    keyUrl: 'https://console.anthropic.com/settings/keys',
    suggested: ['claude-sonnet-4-5', 'claude-3-5-haiku-latest'],
  },
  {
    id: 'openrouter',
    label: 'OpenRouter',
    kind: 'openai',
    baseUrl: 'https://openrouter.ai/api/v1',
    keyHint: 'sk-or-…',
    keyUrl: 'https://openrouter.ai/keys',
    suggested: ['openai/gpt-4.1-mini', 'anthropic/claude-sonnet-4.5', 'meta-llama/llama-3.3-70b-instruct'],
  },
  {
    id: 'other',
    label: 'Other (OpenAI-compatible URL)',
    kind: 'openai',
    baseUrl: null,
    keyHint: 'optional',
    keyUrl: null,
    suggested: [],
  },
];

/** The model to preselect among those a provider lists. */
export function pickModel(available: string[], suggested: string[]): string {
  for (const s of suggested) if (available.includes(s)) return s;
  return available[0] ?? '';
}

/** A provider name (`^[a-z0-9][a-z0-9_.-]{0,62}$`) not taken yet. */
export function freeName(base: string, taken: string[]): string {
  let clean = base.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 50);
  if (!clean) clean = 'provider';
  if (!taken.includes(clean)) return clean;
  for (let n = 2; n < 1000; n++) if (!taken.includes(`${clean}-${n}`)) return `${clean}-${n}`;
  return `${clean}-${Date.now()}`;
}

/** A name for an OpenAI-compatible URL: its host (`api.groq.com` -> `groq`). */
export function nameForUrl(url: string): string {
  try {
    const hostname = new URL(url).hostname;
    if (/^[\d.]+$/.test(hostname) || hostname.includes(':') || hostname.startsWith('[') || hostname === 'localhost') return 'custom';
    const host = hostname.replace(/^(api|www)\./, '');
    return host.split('.')[0] || 'provider';
  } catch {
    return 'provider';
  }
}

/** Add a provider, then make `model` the default for new chats. */
export async function connect(opts: {
  name: string;
  kind: 'openai' | 'anthropic';
  baseUrl: string | null;
  apiKey: string | null;
  model: string;
}): Promise<string> {
  await admin.addProvider({ name: opts.name, kind: opts.kind, base_url: opts.baseUrl, api_key: opts.apiKey });
  const ref = `${opts.name}/${opts.model}`;
  if (opts.model) await admin.updateSettings({ default_model: ref });
  return ref;
}

// ---- The starter model: a demo, and said so ----

export const STARTER_LIMITS =
  'A tiny demo model (135 million parameters) that runs inside Parley, for trying the app. ' +
  'It gets arithmetic and facts wrong, cannot use tools, and only skims long files.';

/** Every model the server offers is the demo starter (or there is none): time to connect one. */
export function needsRealModel(items: ModelInfo[]): boolean {
  return items.filter((m) => !m.auto).every((m) => m.demo);
}

/** The embedded model's state in words that read as a state, never as an error. */
export function localStateLabel(local: ModelList['local'] | null): string {
  const status: LocalStatus | undefined = local?.status;
  switch (status) {
    case 'not_loaded':
      return 'loads on first message';
    case 'loading':
      return 'loading…';
    case 'ready':
      return 'ready';
    case 'disabled':
      return 'off';
    case 'error':
      return 'unavailable';
    default:
      return '';
  }
}

// ---- The admin's first run ----

const DISMISSED = 'setup_dismissed';

export function setupDismissed(user: User | null): boolean {
  return Boolean(user?.preferences && (user.preferences as Record<string, unknown>)[DISMISSED]);
}

/** Remember (on the account) that the admin closed the first-run setup. */
export async function dismissSetup(): Promise<User> {
  return (await me.update({ preferences: { [DISMISSED]: true } })).user;
}
