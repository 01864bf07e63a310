// Types mirroring the native HTTP API contract (docs/ARCHITECTURE.md).

export type Role = 'admin' | 'user';
export type UserStatus = 'active' | 'disabled' | 'pending';
export type SignupMode = 'open' | 'closed' | 'approval';
export type Theme = 'light' | 'dark' | 'system';

export interface Preferences {
  theme?: Theme;
  [key: string]: unknown;
}

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role | string;
  status: UserStatus | string;
  timezone: string | null;
  about_me: string | null;
  response_style: string | null;
  preferences: Preferences | null;
  created_at: string;
}

export interface AuthConfig {
  signup: SignupMode;
  has_users: boolean;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface CreatedApiKey {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  key: string;
}

export interface ModelInfo {
  ref: string;
  provider: string;
  name: string;
  display_name: string;
  context_window: number | null;
  supports_tools: boolean;
  supports_vision: boolean;
  input_price: number | null;
  output_price: number | null;
}

export type LocalStatus = 'disabled' | 'not_loaded' | 'loading' | 'ready' | 'error';

export interface ModelList {
  items: ModelInfo[];
  default: string | null;
  local: { status: LocalStatus; detail: string };
}

export interface Conversation {
  id: string;
  title: string | null;
  model: string | null;
  pinned: boolean;
  archived: boolean;
  temporary: boolean;
  /** Enabled tool names; null: the defaults. */
  tools?: string[] | null;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A chart or file a tool produced (the code interpreter), served by the backend. */
export interface ToolAttachment {
  id: string;
  filename: string;
  media_type: string;
  kind: 'image' | 'file' | string;
  size: number;
  url: string;
}

export interface ToolStep {
  id: string;
  name: string;
  arguments: unknown;
  output: string | null;
  is_error: boolean;
  duration_ms: number | null;
  attachments?: ToolAttachment[];
  /** The call waited for the user's approval (side-effecting tool). */
  needs_confirmation?: boolean;
}

/** What an answer drew on; web pages are `{kind: 'web', url, title, snippet}`. */
export interface MessageSource {
  kind: string;
  title: string;
  url?: string;
  snippet?: string;
}

export type MessageStatus = 'complete' | 'streaming' | 'failed' | 'cancelled';

export interface Message {
  id: string;
  parent_id: string | null;
  role: 'user' | 'assistant' | 'system' | 'tool' | string;
  content: string;
  reasoning: string | null;
  steps: ToolStep[] | null;
  sources?: MessageSource[] | null;
  status: MessageStatus | string;
  provider: string | null;
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  latency_ms: number | null;
  ttft_ms: number | null;
  finish_reason: string | null;
  cost: number | null;
  error_code: string | null;
  error_message: string | null;
  feedback: -1 | 0 | 1 | null;
  pinned: boolean;
  created_at: string;
  siblings: string[];
}

export interface ConversationDetail {
  conversation: Conversation;
  messages: Message[];
}

export interface SearchHit {
  conversation_id: string;
  title: string | null;
  message_id: string | null;
  snippet: string;
  highlights: [number, number][];
}

export interface AdminSettings {
  signup: SignupMode;
  default_model: string | null;
  [key: string]: unknown;
}

export type ProviderSource = 'config' | 'environment' | 'database' | 'builtin';

export interface ProviderInfo {
  name: string;
  kind: string;
  base_url: string | null;
  source: ProviderSource | string;
  has_key: boolean;
  editable: boolean;
  models: (string | { name?: string; ref?: string; display_name?: string })[];
}

export interface ProviderTestResult {
  ok: boolean;
  models: string[];
  error: string | null;
}

/** RFC 9457 problem body. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
}

// ---- Chat turn stream events ----
export interface Usage {
  input_tokens?: number | null;
  output_tokens?: number | null;
}

export type ChatEvent =
  | { type: 'start'; data: { user_message: Message; assistant_message: Message } }
  | { type: 'text'; data: { text: string } }
  | { type: 'reasoning'; data: { text: string } }
  | { type: 'tool_start'; data: { id: string; name: string; arguments: unknown } }
  | { type: 'tool_confirm'; data: { id: string; name: string; arguments: string } }
  | { type: 'sources'; data: { sources: MessageSource[] } }
  | {
      type: 'tool_result';
      data: { id: string; name: string; output: string; is_error: boolean; duration_ms: number | null; attachments?: ToolAttachment[] };
    }
  | { type: 'usage'; data: { usage: Usage } }
  | { type: 'context'; data: { dropped_messages: number; summarized: boolean; message: string } }
  | { type: 'error'; data: { code: string; message: string; retryable: boolean } }
  /** `message` is null when the server could not store the answer (the stream still ends). */
  | { type: 'done'; data: { finish_reason: string | null; usage: Usage | null; message: Message | null } }
  | { type: 'title'; data: { conversation_id: string; title: string } };
