// The native HTTP API's types, in one place. Names for the schemas generated from the
// server's OpenAPI document (schema.d.ts: `npm run gen:api`); a type the server does
// not declare yet is written here by hand, after docs/ARCHITECTURE.md, until it does.
// The chat stream's events are in events.ts.

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

// ---- Files and knowledge ----
export type FileStatus = 'queued' | 'parsing' | 'embedding' | 'ready' | 'failed';

export interface StoredFile {
  id: string;
  filename: string;
  media_type: string;
  kind: string;
  size_bytes: number;
  status: FileStatus | string;
  progress: number;
  error_code: string | null;
  error: string | null;
  pages: number | null;
  pages_done: number;
  chunk_count: number;
  embedded_count: number;
  conversation_id: string | null;
  collection_id: string | null;
  message_id: string | null;
  created_at: string;
  duplicate?: boolean;
}

export interface Passage {
  id: number;
  file_id: string;
  filename: string;
  kind: string;
  page: number | null;
  pages: number | null;
  section: string | null;
  ordinal: number;
  text: string;
}

export interface Collection {
  id: string;
  name: string;
  description: string;
  file_count: number;
}

/** A source of kind "file" on an answer (see FileContext in parley.knowledge.context). */
export interface FileSource {
  kind: 'file';
  title: string;
  ref: number | null;
  file_id: string;
  filename: string;
  page: number | null;
  section: string | null;
  chunk_id: number | null;
  snippet: string;
  mode: 'whole' | 'retrieved' | 'pending' | 'failed' | 'unsupported' | 'image' | string;
  status?: string;
  detail?: string;
}

// ---- Memory ----
export interface Memory {
  id: string;
  text: string;
  source: 'explicit' | 'auto' | string;
  status: 'active' | 'pending' | string;
  scope_type: 'project' | 'assistant' | null | string;
  scope_id: string | null;
  conversation_id: string | null;
  message_id: string | null;
  /** A proposed update (review mode): the memory approving it rewrites. */
  replaces?: { id: string; text: string | null } | null;
  url: string | null;
  created_at: string;
  updated_at: string;
}

export interface MemoryList {
  items: Memory[];
  next_cursor: string | null;
  counts: { active?: number; pending?: number };
  settings: { enabled: boolean; review: boolean };
}

/** What the memory feature adds to a message's `sources`. */
export interface CitedSource {
  kind: 'memory' | 'conversation' | string;
  id: string;
  title: string;
  url?: string;
  action?: string;
}

export interface ConversationSummary {
  text: string;
  until_message_id: string;
}

// ---- Tools and MCP ----
export interface ToolInfo {
  name: string;
  description: string;
  side_effecting: boolean;
  source: 'builtin' | 'web' | 'mcp' | 'feature' | string;
}

export interface PendingCall {
  id: string;
  conversation_id: string;
  name: string;
  arguments: string;
  status?: string;
}

export interface WebSource {
  kind: string;
  title: string;
  url?: string;
  snippet?: string;
}

export interface McpTool {
  name: string;
  description: string;
  side_effecting: boolean;
}

export interface McpServer {
  id: string;
  name: string;
  transport: 'stdio' | 'http';
  command: string | null;
  args: string[];
  url: string | null;
  env_keys: string[];
  header_keys: string[];
  enabled: boolean;
  status: string;
  error: string | null;
  tools: McpTool[];
}

export interface McpServerIn {
  name: string;
  transport: 'stdio' | 'http';
  command?: string;
  args?: string[];
  url?: string;
  env?: Record<string, string>;
  headers?: Record<string, string>;
}
