// The chat stream's events (`text/event-stream` of the chat turn routes; see
// docs/ARCHITECTURE.md, "Chat turns"). OpenAPI does not describe event streams, so
// these are written by hand, field for field after the server's encoder
// (`parley.api.turn_stream` and the event classes of `parley.messages`).
import type { Message, MessageSource, ToolAttachment } from './types';

/** Token counts; `usage` events and `done` carry them. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

export interface StartEvent {
  /** Already committed. */
  user_message: Message;
  assistant_message: Message;
}

export interface TextEvent {
  text: string;
}

export interface ToolStartEvent {
  id: string;
  name: string;
  /** The raw JSON text the model wrote. */
  arguments: string;
}

/** A side-effecting call waits for `POST /api/conversations/{id}/tool-calls/{call_id}`. */
export type ToolConfirmEvent = ToolStartEvent;

export interface ToolResultEvent {
  id: string;
  name: string;
  output: string;
  is_error: boolean;
  duration_ms: number;
  attachments: ToolAttachment[];
}

export interface SourcesEvent {
  /** The answer's full source list so far. */
  sources: MessageSource[];
}

export interface ContextEvent {
  dropped_messages: number;
  summarized: boolean;
  message: string;
}

export interface ErrorEvent {
  /** Stable (see `parley.errors`). */
  code: string;
  message: string;
  retryable: boolean;
}

export interface DoneEvent {
  finish_reason: string;
  usage: Usage | null;
  /** The stored answer with its siblings; null when it could not be stored (after an
   * `error` with code `storage_error`): the stream still ends with `done`. */
  message: Message | null;
}

export interface TitleEvent {
  conversation_id: string;
  title: string;
}

/** One event: `type` is the SSE event name, `data` its JSON payload. */
export type ChatEvent =
  | { type: 'start'; data: StartEvent }
  | { type: 'text'; data: TextEvent }
  | { type: 'reasoning'; data: TextEvent }
  | { type: 'tool_start'; data: ToolStartEvent }
  | { type: 'tool_confirm'; data: ToolConfirmEvent }
  | { type: 'tool_result'; data: ToolResultEvent }
  | { type: 'sources'; data: SourcesEvent }
  | { type: 'usage'; data: { usage: Usage } }
  | { type: 'context'; data: ContextEvent }
  | { type: 'error'; data: ErrorEvent }
  | { type: 'done'; data: DoneEvent }
  | { type: 'title'; data: TitleEvent };

export type ChatEventType = ChatEvent['type'];

/** Every event name the client understands; others are skipped. */
export const CHAT_EVENT_TYPES: ReadonlySet<string> = new Set<ChatEventType>([
  'start',
  'text',
  'reasoning',
  'tool_start',
  'tool_confirm',
  'tool_result',
  'sources',
  'usage',
  'context',
  'error',
  'done',
  'title',
]);
