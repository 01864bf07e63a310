// The chat stream's events (`text/event-stream` of the chat turn routes; see
// docs/ARCHITECTURE.md, "Chat turns"). Generated like every other API type: the
// server declares each event's payload (`parley.api.stream_events`, checked against
// its encoder by tests/api/test_stream_events.py) and the routes' response names the
// union `ChatStreamEvent` of `{event, data}` frames. Here they get short names, and
// the union becomes `ChatEvent` (`type` is the SSE event name, `data` its JSON).
import type { components } from './schema';

type Schemas = components['schemas'];

/** Token counts; `usage` events and `done` carry them. */
export type Usage = Schemas['TokenUsage'];
/** `start`: the stored user message (already committed) and the answer being written. */
export type StartEvent = Schemas['TurnStart'];
export type TextEvent = Schemas['TextEvent'];
export type ReasoningEvent = Schemas['ReasoningEvent'];
/** `arguments` is the raw JSON text the model wrote. */
export type ToolStartEvent = Schemas['ToolStartEvent'];
/** A side-effecting call waits for `POST /api/conversations/{id}/tool-calls/{call_id}`. */
export type ToolConfirmEvent = Schemas['ToolConfirmEvent'];
export type ToolResultEvent = Schemas['ToolResultEvent'];
/** The answer's full source list so far. */
export type SourcesEvent = Schemas['SourcesEvent'];
/** Memories the turn saved, changed or deleted (also in the answer's `sources`, each
 * with its `action`); `url` is the memory page. Shown as the "Memory updated" chip. */
export type MemoryUpdatedEvent = Schemas['MemoryUpdatedEvent'];
export type UsageEvent = Schemas['UsageEvent'];
export type ContextEvent = Schemas['ContextEvent'];
/** `code` is stable (see `parley.errors`). */
export type ErrorEvent = Schemas['ErrorEvent'];
/** `message` is the stored answer with its siblings; null when it could not be stored
 * (after an `error` with code `storage_error`): the stream still ends with `done`. */
export type DoneEvent = Schemas['DoneEvent'];
export type TitleEvent = Schemas['TitleEvent'];
/** Only on a reattached stream whose missed events were dropped: the answer so far. */
export type ResyncEvent = Schemas['ResyncEvent'];

/** One frame of the document's union: `event` names it, `data` is its payload. */
export type StreamFrame = Schemas['ChatStreamEvent'];

type AsChatEvent<F> = F extends { event: infer E; data: infer D } ? { type: E; data: D } : never;

/** One event: `type` is the SSE event name, `data` its JSON payload (a discriminated
 * union over `type`, one member per frame of `ChatStreamEvent`). */
export type ChatEvent = AsChatEvent<StreamFrame>;

export type ChatEventType = ChatEvent['type'];

/** Every event name the client understands; others are skipped. A `Record` over the
 * generated names, so an event the server adds fails type checking until it is listed. */
const KNOWN: Record<ChatEventType, true> = {
  start: true,
  text: true,
  reasoning: true,
  tool_start: true,
  tool_confirm: true,
  tool_result: true,
  sources: true,
  memory_updated: true,
  usage: true,
  context: true,
  error: true,
  done: true,
  title: true,
  resync: true,
};

export const CHAT_EVENT_TYPES: ReadonlySet<string> = new Set<string>(Object.keys(KNOWN));
