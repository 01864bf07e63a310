// The open conversation: its active branch, and the live state of a streaming turn.
import { ApiError, conversations as convApi, errorMessage, messages as msgApi, reattachTurn, streamTurn, type TurnRequest } from '../api/client';
import { StreamingMarkdown, type RenderedBlock } from '../markdown/stream';
import type { Conversation, ConversationDetail, ConversationSummary, Message, ToolStep } from '../api/types';
import type { ChatEvent, Usage } from '../api/events';
import { conversations } from './conversations.svelte';
import { models } from './models.svelte';
import { chatPath, router } from './router.svelte';
import { toasts } from './toasts.svelte';
import { toolCalls } from './tools.svelte';
import { memoryUpdates } from './memoryUpdates.svelte';
import { knowledge } from './knowledge.svelte';
import { discardTemporary } from '../memory';
import { codePointIndex, codePointLength, interleave, type AnswerPart } from '../toolsequence';

type LiveStep = ToolStep & { running: boolean };

export interface LiveStream {
  assistantId: string;
  /** The text after the last tool step, as it streams (finished blocks and the tail). */
  blocks: RenderedBlock[];
  tail: string;
  reasoning: string;
  steps: LiveStep[];
  /** The answer up to the last step, in order: text and steps (`interleave` of the
   * text before the last step); rebuilt only when a step starts or ends, never per token. */
  parts: AnswerPart<LiveStep>[];
  usage: Usage | null;
  error: { code: string; message: string; retryable: boolean } | null;
  startedAt: number;
}

const TMP_USER = 'tmp-user';
const TMP_ASSISTANT = 'tmp-assistant';

/** A message shown until the stream's `start` brings the stored ones. */
function placeholder(conversation_id: string, id: string, role: string, content: string, parent_id: string | null): Message {
  return {
    id, conversation_id, parent_id, role, content, reasoning: '', steps: [], sources: [], status: 'streaming', provider: null,
    model: null, input_tokens: 0, output_tokens: 0, latency_ms: null, ttft_ms: null, finish_reason: null, cost: 0,
    error_code: null, error_message: null, attempts: null, route: null, notice: null, feedback: 0, pinned: false, created_at: new Date().toISOString(),
    siblings: [id],
  };
}

/** Sibling ids known locally and from the server, oldest first. The server sends only
 * `[id]` on some responses (a turn's `done`, a message PATCH): never shrink the list. */
export function mergeSiblings(known: string[] | null | undefined, incoming: string[] | null | undefined): string[] {
  const out = [...(known ?? [])];
  for (const id of incoming ?? []) if (!out.includes(id)) out.push(id);
  return out;
}

const raf: (cb: () => void) => void =
  typeof requestAnimationFrame === 'function' ? (cb) => requestAnimationFrame(cb) : (cb) => setTimeout(cb, 16);

class Chat {
  conversationId = $state<string | null>(null);
  conversation = $state<Conversation | null>(null);
  /** Active branch root -> leaf. Raw (not deeply reactive): replaced, never mutated. */
  messages = $state.raw<Message[]>([]);
  loading = $state(false);
  loadError = $state<string | null>(null);
  live = $state.raw<LiveStream | null>(null);
  busy = $state(false);
  /** Context notices per assistant message id. */
  notices = $state<Record<string, string>>({});
  /** Model for a chat that does not exist yet. */
  draftModel = $state<string | null>(null);
  /** The next new chat is temporary (no memory, deleted when left). */
  draftTemporary = $state(false);
  /** Tools chosen on the new-chat screen (null: the defaults), sent when it is created. */
  draftTools = $state<string[] | null>(null);
  /** Summary of the older turns of this branch (long conversations). */
  summary = $state<ConversationSummary | null>(null);
  /** Incremented when the composer should take focus. */
  focusTick = $state(0);
  /** Text a starter suggestion puts in the composer (and whether to open the file picker). */
  prefill = $state.raw<{ text: string; attach: boolean; tick: number } | null>(null);

  /** Each text delta of the live answer, and its end (`done`): read aloud listens. */
  textListener: ((answerId: string, delta: string, done: boolean) => void) | null = null;

  private controller: AbortController | null = null;
  private md: StreamingMarkdown | null = null;
  private reasoningBuf = '';
  /** The live answer's text before its last tool step (`md` holds the text after it). */
  private before = '';
  private frameQueued = false;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  private loadGen = 0;
  private resyncAfterRun = false;
  /** SSE id of the last event read from the turn being shown (to reattach after a cut). */
  private lastEventId: string | null = null;
  /** Reattach attempts per answer that another worker writes (polled, bounded). */
  private followTries = new Map<string, number>();
  private followTimer: ReturnType<typeof setTimeout> | null = null;

  /** The branch ends with an answer still being written (and this page is not reading
   * it yet): a follow-up would branch from half an answer, so sending waits. */
  get unfinished(): boolean {
    const last = this.messages.length ? this.messages[this.messages.length - 1] : null;
    return !!last && last.role === 'assistant' && last.status === 'streaming' && !last.id.startsWith('tmp-');
  }

  get model(): string | null {
    return this.conversation?.model ?? this.draftModel ?? models.defaultRef;
  }

  /** Start a fresh (unsaved) chat. */
  newChat(): void {
    this.leaveTemporary();
    this.detach();
    this.draftTemporary = false;
    this.draftTools = null;
    knowledge.reset();
    this.summary = null;
    this.loadGen++;
    this.conversationId = null;
    this.conversation = null;
    this.messages = [];
    this.notices = {};
    this.loadError = null;
    this.loading = false;
    this.focusTick++;
  }

  async open(id: string): Promise<void> {
    if (id === this.conversationId && (this.conversation || this.busy)) return;
    this.leaveTemporary();
    this.detach();
    this.summary = null;
    const gen = ++this.loadGen;
    this.conversationId = id;
    this.conversation = conversations.get(id) ?? null;
    this.messages = [];
    this.notices = {};
    this.loading = true;
    this.loadError = null;
    try {
      const detail = await convApi.get(id);
      if (gen !== this.loadGen) return;
      this.apply(detail);
    } catch (e) {
      if (gen !== this.loadGen) return;
      this.loadError = e instanceof ApiError && e.status === 404 ? 'This conversation does not exist or was deleted.' : errorMessage(e);
    } finally {
      if (gen === this.loadGen) this.loading = false;
    }
  }

  private apply(detail: ConversationDetail): void {
    this.conversation = detail.conversation;
    this.messages = detail.messages;
    this.summary = (detail as ConversationDetail & { summary?: ConversationSummary | null }).summary ?? null;
    this.resumeStreaming();
  }

  /** An answer the server is still writing (status `streaming`: the page was reloaded,
   * the chat reopened, another tab sent it): reattach and show it live, with Stop. */
  private resumeStreaming(): void {
    if (this.busy || !this.conversationId || !this.unfinished) return;
    const last = this.messages[this.messages.length - 1];
    void this.follow(this.conversationId, last.id, null);
  }

  /** Read an answer's events from `after` (null: from its start) until `done`. */
  private async follow(conversationId: string, messageId: string, after: string | null): Promise<void> {
    if (this.followTimer) clearTimeout(this.followTimer);
    const controller = new AbortController();
    this.controller = controller;
    this.busy = true;
    if (after === null || !this.md || !this.live || this.live.assistantId !== messageId) {
      this.md = new StreamingMarkdown();
      this.reasoningBuf = '';
      this.before = '';
      this.live = { assistantId: messageId, blocks: [], tail: '', reasoning: '', steps: [], parts: [], usage: null, error: null, startedAt: performance.now() };
    }
    this.lastEventId = after;
    let final: Message | null | undefined;
    try {
      for await (const ev of reattachTurn(conversationId, messageId, after, controller.signal)) {
        if (ev.type === 'title') {
          this.handle(ev);
          continue;
        }
        if (ev.type === 'memory_updated' && final) {
          memoryUpdates.add(final.id, ev.data); // learned after the answer: shown on it
          continue;
        }
        if (this.controller !== controller) return;
        if (ev.id !== undefined) this.lastEventId = ev.id;
        if (ev.type === 'start') continue; // the messages are on the page already
        if (ev.type === 'done') final = ev.data.message;
        this.handle(ev);
        if (ev.type === 'done' && this.controller === controller) {
          this.controller = null; // free the composer; a model-made title may still come
          this.busy = false;
          this.live = null;
          this.md = null;
        }
      }
    } catch (e) {
      if (this.controller !== controller) return;
      if (e instanceof DOMException && e.name === 'AbortError') {
        this.failLocal('Stopped.', 'cancelled');
        final = null;
      } else {
        // Unreachable for now: show what arrived as failed; the re-read below brings
        // the answer back live if the server is still writing it.
        this.failLocal(errorMessage(e));
      }
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.busy = false;
        this.live = null;
        this.md = null;
      }
    }
    if (this.controller !== null || this.conversationId !== conversationId) return;
    if (final === undefined || final?.status === 'streaming') {
      // Cut again, or written by another worker (its events are not here): re-read the
      // stored answer every 2 s, for up to 5 minutes.
      const tries = (this.followTries.get(messageId) ?? 0) + 1;
      this.followTries.set(messageId, tries);
      if (tries <= 150) {
        this.followTimer = setTimeout(() => {
          if (this.conversationId === conversationId && !this.busy) void this.resync();
        }, 2000);
      }
    } else {
      this.followTries.delete(messageId);
    }
  }

  /** A temporary chat is deleted when the user leaves it. */
  leaveTemporary(onPageClose = false): void {
    if (this.conversation?.temporary) void discardTemporary(this.conversation.id, onPageClose);
  }

  /** Stop reading the current stream without asking the server to stop. */
  private detach(): void {
    if (this.followTimer) clearTimeout(this.followTimer);
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.live = null;
    this.busy = false;
  }

  async setModel(ref: string | null): Promise<void> {
    if (!this.conversation) {
      this.draftModel = ref;
      return;
    }
    const prev = this.conversation.model;
    this.conversation = { ...this.conversation, model: ref };
    try {
      const c = await convApi.update(this.conversation.id, { model: ref });
      this.conversation = c;
      conversations.upsert(c);
    } catch (e) {
      this.conversation = { ...this.conversation, model: prev };
      toasts.error(`Could not change the model: ${errorMessage(e)}`);
    }
  }

  // ---------------- turns ----------------

  /** The open conversation's id, creating it first for a new chat (null when that fails). */
  async ensureConversation(): Promise<string | null> {
    if (this.conversationId) return this.conversationId;
    try {
      const c = await convApi.create({
        model: this.draftModel ?? undefined,
        ...(this.draftTemporary ? { temporary: true } : {}),
        ...(this.draftTools ? { tools: this.draftTools } : {}),
      });
      this.draftTools = null;
      this.loadGen++;
      this.conversationId = c.id;
      this.conversation = c;
      this.messages = [];
      const picked = knowledge.applyDraft(c.id); // before the first turn, so it draws on them
      conversations.upsert(c, true);
      router.navigate(chatPath(c.id));
      await picked;
      return c.id;
    } catch (e) {
      toasts.error(`Could not start a conversation: ${errorMessage(e)}`);
      return null;
    }
  }

  /** Send a new message. Returns false when nothing was sent (caller keeps the draft). */
  async send(content: string, options: { webSearch?: boolean } = {}): Promise<boolean> {
    const text = content.trim();
    if (!text || this.busy || this.unfinished) return false;
    const id = await this.ensureConversation();
    if (!id) return false;
    const leaf = this.messages.length ? this.messages[this.messages.length - 1] : null;
    this.messages = [...this.messages, placeholder(id, TMP_USER, 'user', text, leaf?.id ?? null), placeholder(id, TMP_ASSISTANT, 'assistant', '', TMP_USER)];
    return this.run({ kind: 'send', conversationId: id, content: text, model: this.conversation?.model ?? undefined, web_search: options.webSearch });
  }

  async regenerate(messageId: string): Promise<boolean> {
    if (!this.conversationId || this.busy) return false;
    const i = this.messages.findIndex((m) => m.id === messageId);
    if (i === -1) return false;
    const target = this.messages[i];
    const keep = target.role === 'assistant' ? this.messages.slice(0, i) : this.messages.slice(0, i + 1);
    const parent = keep.length ? keep[keep.length - 1].id : null;
    this.messages = [...keep, placeholder(this.conversationId, TMP_ASSISTANT, 'assistant', '', parent)];
    return this.run({ kind: 'regenerate', conversationId: this.conversationId, messageId, model: this.conversation?.model ?? undefined });
  }

  async edit(messageId: string, content: string): Promise<boolean> {
    const text = content.trim();
    if (!this.conversationId || this.busy || !text) return false;
    const i = this.messages.findIndex((m) => m.id === messageId);
    if (i === -1) return false;
    const keep = this.messages.slice(0, i);
    const parent = keep.length ? keep[keep.length - 1].id : null;
    this.messages = [...keep, placeholder(this.conversationId, TMP_USER, 'user', text, parent), placeholder(this.conversationId, TMP_ASSISTANT, 'assistant', '', TMP_USER)];
    return this.run({ kind: 'edit', conversationId: this.conversationId, messageId, content: text, model: this.conversation?.model ?? undefined });
  }

  /** Ask the server to stop, then stop reading if it does not finish promptly. */
  async stop(): Promise<void> {
    if ((!this.busy && !this.unfinished) || !this.conversationId) return;
    const controller = this.controller;
    try {
      await convApi.stop(this.conversationId);
    } catch {
      /* abort below regardless */
    }
    if (this.stopTimer) clearTimeout(this.stopTimer);
    this.stopTimer = setTimeout(() => {
      if (controller && this.controller === controller) controller.abort();
    }, 2500);
  }

  private async run(req: TurnRequest): Promise<boolean> {
    const controller = new AbortController();
    this.controller = controller;
    this.busy = true;
    this.md = new StreamingMarkdown();
    this.reasoningBuf = '';
    this.before = '';
    this.live = { assistantId: TMP_ASSISTANT, blocks: [], tail: '', reasoning: '', steps: [], parts: [], usage: null, error: null, startedAt: performance.now() };
    let started = false;
    let finished = false;
    let answered: string | null = null; // the finished answer's id, for late events
    const snapshot = this.messages;
    this.lastEventId = null;
    // A cut mid-answer (network blip): reattach where the stream stopped.
    const resume = (): boolean => {
      const live = this.live;
      if (!started || !live || this.lastEventId === null || !this.conversationId) return false;
      void this.follow(this.conversationId, live.assistantId, this.lastEventId);
      return true;
    };
    try {
      for await (const ev of streamTurn(req, controller.signal)) {
        // A model-made title can follow `done` by a few seconds: the composer is free
        // again at `done`, and the title still lands (it names its conversation).
        if (ev.type === 'title') {
          this.handle(ev);
          continue;
        }
        // A memory that automatic extraction learned comes after `done`: its chip
        // goes on the finished answer while the composer stays free.
        if (ev.type === 'memory_updated' && answered) {
          memoryUpdates.add(answered, ev.data);
          continue;
        }
        if (this.controller !== controller) return true; // navigated away
        if (ev.id !== undefined) this.lastEventId = ev.id;
        if (ev.type === 'start') started = true;
        if (ev.type === 'done') {
          finished = true;
          answered = ev.data.message?.id ?? null;
        }
        this.handle(ev);
        if (finished) this.release(controller);
      }
      if (!finished && this.controller === controller) {
        if (resume()) return true;
        this.failLocal('The connection closed before the reply finished.');
        void this.resync();
      }
      return true;
    } catch (e) {
      if (this.controller !== controller) return started;
      const aborted = e instanceof DOMException && e.name === 'AbortError';
      if (!started) {
        // Nothing was committed: drop the optimistic messages and let the caller keep the draft.
        this.messages = snapshot.filter((m) => m.id !== TMP_USER && m.id !== TMP_ASSISTANT);
        if (req.kind !== 'send') void this.resync();
        if (!aborted) toasts.error(errorMessage(e));
        return false;
      }
      if (!aborted && resume()) return true;
      this.failLocal(aborted ? 'Stopped.' : errorMessage(e), aborted ? 'cancelled' : 'failed');
      void this.resync();
      return true;
    } finally {
      this.release(controller);
    }
  }

  /** The turn read by `controller` is over for the page: free the composer. */
  private release(controller: AbortController): void {
    if (this.controller === controller) {
      this.controller = null;
      this.busy = false;
      this.live = null;
      this.md = null;
      if (this.resyncAfterRun) void this.resync();
      this.resyncAfterRun = false;
      if (this.stopTimer) clearTimeout(this.stopTimer);
    }
  }

  private failLocal(message: string, status: 'failed' | 'cancelled' = 'failed'): void {
    const live = this.live;
    if (!live) return;
    const content = this.before + (this.md?.source ?? '');
    this.messages = this.messages.map((m) =>
      m.id === live.assistantId ? { ...m, content, status, error_message: status === 'failed' ? message : null, reasoning: this.reasoningBuf || m.reasoning } : m,
    );
  }

  /** Re-read the conversation from the server (after an interrupted stream). */
  async resync(): Promise<void> {
    const id = this.conversationId;
    if (!id) return;
    try {
      const d = await convApi.get(id);
      if (id === this.conversationId && !this.busy) this.apply(d);
    } catch {
      /* keep local state */
    }
  }

  private scheduleFrame(): void {
    if (this.frameQueued) return;
    this.frameQueued = true;
    raf(() => {
      this.frameQueued = false;
      this.flushFrame();
    });
  }

  private flushFrame(): void {
    const live = this.live;
    if (!live || !this.md) return;
    const { blocks, tail, pending } = this.md.flush();
    // Unchanged (a throttled tail): keep the object, so nothing re-renders or re-measures.
    if (blocks !== live.blocks || tail !== live.tail || this.reasoningBuf !== live.reasoning) {
      this.live = { ...live, blocks, tail, reasoning: this.reasoningBuf };
    }
    if (pending) this.scheduleFrame(); // a throttled long tail: render it once its turn comes
  }

  private handle(ev: ChatEvent): void {
    const live = this.live;
    switch (ev.type) {
      case 'start': {
        const { user_message: u, assistant_message: a } = ev.data;
        const base = this.messages.filter((m) => m.id !== TMP_USER && m.id !== TMP_ASSISTANT);
        const pi = u.parent_id ? base.findIndex((m) => m.id === u.parent_id) : -1;
        const prefix = u.parent_id ? base.slice(0, pi + 1) : [];
        this.messages = [...prefix, u, a];
        if (live) this.live = { ...live, assistantId: a.id };
        break;
      }
      case 'text':
        this.md?.append(ev.data.text);
        if (live) this.textListener?.(live.assistantId, ev.data.text, false);
        this.scheduleFrame();
        break;
      case 'reasoning':
        this.reasoningBuf += ev.data.text;
        this.scheduleFrame();
        break;
      case 'tool_start':
        if (live) {
          // The text so far is finished: it is shown before this step, and what the
          // model writes next goes after it (a new Markdown stream).
          const written = this.md?.source ?? '';
          if (written) {
            this.before += written;
            this.md = new StreamingMarkdown();
          }
          const offset = ev.data.offset ?? codePointLength(this.before);
          const steps = [...live.steps, { id: ev.data.id, name: ev.data.name, arguments: ev.data.arguments, offset, running: true }];
          this.live = { ...live, steps, parts: interleave(this.before, steps), ...(written ? { blocks: [], tail: '' } : {}) };
        }
        break;
      case 'tool_confirm':
        if (this.conversationId) toolCalls.ask(this.conversationId, ev.data);
        break;
      case 'sources':
        if (live) toolCalls.setSources(live.assistantId, ev.data.sources);
        break;
      case 'memory_updated':
        if (live) memoryUpdates.add(live.assistantId, ev.data);
        break;
      case 'tool_result':
        if (live) {
          let found = false;
          const steps = live.steps.map((s) => {
            if (s.id !== ev.data.id) return s;
            found = true;
            return { ...s, output: ev.data.output, is_error: ev.data.is_error, duration_ms: ev.data.duration_ms, attachments: ev.data.attachments, running: false };
          });
          if (!found) steps.push({ id: ev.data.id, name: ev.data.name, arguments: '', offset: codePointLength(this.before), output: ev.data.output, is_error: ev.data.is_error, duration_ms: ev.data.duration_ms, attachments: ev.data.attachments, running: false });
          this.live = { ...live, steps, parts: interleave(this.before, steps) };
        }
        break;
      case 'usage':
        if (live) this.live = { ...live, usage: ev.data.usage };
        break;
      case 'context': {
        const id = live?.assistantId;
        const d = ev.data;
        const msg =
          d.message ||
          `${d.dropped_messages} earlier message${d.dropped_messages === 1 ? ' was' : 's were'} ${d.summarized ? 'summarized' : 'left out'} to fit the model's context window.`;
        if (id) this.notices = { ...this.notices, [id]: msg };
        break;
      }
      case 'error':
        if (live) this.live = { ...live, error: ev.data };
        break;
      case 'done': {
        toolCalls.settle();
        const final = ev.data.message;
        const liveId = live?.assistantId;
        if (liveId) this.textListener?.(final?.id ?? liveId, '', true);
        if (!final) {
          // The server could not store the answer: show what arrived as failed, then re-read.
          this.failLocal(live?.error?.message || 'The answer could not be saved.');
          this.live = null;
          this.resyncAfterRun = true;
          break;
        }
        if (liveId && liveId !== final.id && this.notices[liveId]) {
          this.notices = { ...this.notices, [final.id]: this.notices[liveId] };
        }
        this.messages = this.messages.map((m) =>
          m.id === final.id || m.id === liveId
            ? {
                ...final,
                siblings: mergeSiblings((m.siblings ?? []).filter((id) => !id.startsWith('tmp-')), final.siblings),
                error_message: final.error_message ?? (live?.error && final.status === 'failed' ? live.error.message : null),
                error_code: final.error_code ?? (live?.error && final.status === 'failed' ? live.error.code : null),
              }
            : m,
        );
        this.live = null;
        if (this.conversation) {
          const c = { ...this.conversation, updated_at: new Date().toISOString() };
          this.conversation = c;
          conversations.upsert(c, true);
        }
        break;
      }
      case 'resync': {
        // The events this reader missed are gone: the answer so far replaces what it had.
        const steps = ev.data.steps.map((step) => ({ ...step, running: step.output === undefined }));
        // The text up to the last step that says where it fell is shown with the steps;
        // the rest streams on.
        const last = Math.max(0, ...steps.map((step) => step.offset ?? 0));
        const cut = codePointIndex(ev.data.content, last);
        this.before = ev.data.content.slice(0, cut);
        this.md = new StreamingMarkdown();
        this.md.append(ev.data.content.slice(cut));
        this.reasoningBuf = ev.data.reasoning;
        if (live) {
          this.live = { ...live, steps, parts: interleave(this.before, steps), blocks: [], tail: '' };
          toolCalls.setSources(live.assistantId, ev.data.sources);
        }
        this.scheduleFrame();
        break;
      }
      case 'title': {
        const { conversation_id, title } = ev.data;
        conversations.patchLocal(conversation_id, { title });
        if (this.conversation?.id === conversation_id) this.conversation = { ...this.conversation, title };
        break;
      }
    }
  }

  // ---------------- other actions ----------------

  async switchBranch(messageId: string): Promise<void> {
    if (!this.conversationId || this.busy) return;
    try {
      const d = await convApi.branch(this.conversationId, messageId);
      this.apply(d);
    } catch (e) {
      toasts.error(`Could not switch branch: ${errorMessage(e)}`);
    }
  }

  async setFeedback(messageId: string, value: -1 | 0 | 1): Promise<void> {
    const prev = this.messages.find((m) => m.id === messageId);
    if (!prev) return;
    this.replaceMessage({ ...prev, feedback: value });
    try {
      const m = await msgApi.update(messageId, { feedback: value });
      this.replaceMessage({ ...prev, ...m, siblings: mergeSiblings(prev.siblings, m.siblings) });
    } catch (e) {
      this.replaceMessage(prev);
      toasts.error(`Could not save feedback: ${errorMessage(e)}`);
    }
  }

  private replaceMessage(msg: Message): void {
    this.messages = this.messages.map((m) => (m.id === msg.id ? msg : m));
  }

  /** A starter suggestion was chosen: put its text in the composer to finish. */
  fill(text: string, attach = false): void {
    this.prefill = { text, attach, tick: (this.prefill?.tick ?? 0) + 1 };
  }

  setTitleLocal(title: string): void {
    if (this.conversation) this.conversation = { ...this.conversation, title };
  }
}

export const chat = new Chat();
