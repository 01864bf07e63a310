import { afterEach, describe, expect, it, vi } from 'vitest';
import { chat } from '../src/lib/stores/chat.svelte';
import { conversations } from '../src/lib/stores/conversations.svelte';
import type { Message } from '../src/lib/api/types';
import { conversation, message as build } from './fixtures';

function message(id: string, role: string, parent: string | null, content = ''): Message {
  return build(id, role, parent, { content });
}

function sse(events: [string, unknown][], chunkSize = 7): Response {
  const text = events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += chunkSize) c.enqueue(bytes.slice(i, i + chunkSize));
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

const CONV = conversation('c1');

/** SSE with an `id:` per event (ids from `first`). */
function sseWithIds(events: [string, unknown][], first = 1): Response {
  const text = events.map(([e, d], i) => `id: ${first + i}\nevent: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
  return new Response(text, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
}

describe('chat store streaming', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    chat.newChat();
  });

  it('creates a conversation, streams a turn and applies the final message', async () => {
    document.cookie = 'parley_csrf=tok; path=/';
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    const final = { ...asst, status: 'complete', content: 'Hello **there**', output_tokens: 3 };
    const calls: { url: string; init: RequestInit }[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit) => {
        calls.push({ url, init });
        if (url === '/api/conversations') return new Response(JSON.stringify(CONV), { status: 201, headers: { 'Content-Type': 'application/json' } });
        return sse([
          ['start', { user_message: user, assistant_message: asst }],
          ['reasoning', { text: 'hmm' }],
          ['text', { text: 'Hello ' }],
          ['tool_start', { id: 't1', name: 'calculator', arguments: { expression: '1+1' } }],
          ['tool_result', { id: 't1', name: 'calculator', output: '2', is_error: false, duration_ms: 4 }],
          ['text', { text: '**there**' }],
          ['context', { dropped_messages: 2, summarized: false, message: '' }],
          ['usage', { usage: { input_tokens: 5, output_tokens: 3 } }],
          ['done', { finish_reason: 'stop', usage: null, message: final }],
          ['title', { conversation_id: 'c1', title: 'Greeting' }],
        ]);
      }),
    );
    const ok = await chat.send('Hi');
    expect(ok).toBe(true);
    expect(calls[1].url).toBe('/api/conversations/c1/messages');
    expect(new Headers(calls[1].init.headers).get('X-CSRF-Token')).toBe('tok');
    expect(JSON.parse(String(calls[1].init.body))).toEqual({ content: 'Hi' });
    expect(chat.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(chat.messages[1].content).toBe('Hello **there**');
    expect(chat.live).toBeNull();
    expect(chat.busy).toBe(false);
    expect(chat.conversation?.title).toBe('Greeting');
    expect(conversations.get('c1')?.title).toBe('Greeting');
    expect(chat.notices['a1']).toMatch(/2 earlier messages were left out/);
    expect(location.pathname).toBe('/c/c1');
  });

  it('frees the composer at done while the stream stays open for the model-made title', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    const final = { ...asst, status: 'complete', content: 'Hello' };
    const enc = new TextEncoder();
    const frame = (e: string, d: unknown) => enc.encode(`event: ${e}\ndata: ${JSON.stringify(d)}\n\n`);
    let later: ReadableStreamDefaultController<Uint8Array> | null = null;
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        if (url === '/api/conversations') return new Response(JSON.stringify(CONV), { status: 201, headers: { 'Content-Type': 'application/json' } });
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(frame('start', { user_message: user, assistant_message: asst }));
            c.enqueue(frame('text', { text: 'Hello' }));
            c.enqueue(frame('done', { finish_reason: 'stop', usage: null, message: final }));
            c.enqueue(frame('title', { conversation_id: 'c1', title: 'Hi' }));
            later = c; // the model's title comes later
          },
        });
        return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
      }),
    );
    const sent = chat.send('Hi');
    await vi.waitFor(() => expect(chat.conversation?.title).toBe('Hi'));
    expect(chat.busy).toBe(false); // the user may send the next message now
    expect(chat.live).toBeNull();
    expect(chat.messages[1].status).toBe('complete');
    later!.enqueue(frame('title', { conversation_id: 'c1', title: 'A friendly greeting' }));
    later!.close();
    expect(await sent).toBe(true);
    expect(chat.conversation?.title).toBe('A friendly greeting');
    expect(conversations.get('c1')?.title).toBe('A friendly greeting');
    expect(chat.busy).toBe(false);
  });

  it('drops optimistic messages and keeps the draft when the server refuses the turn', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        if (url === '/api/conversations') return new Response(JSON.stringify(CONV), { status: 201, headers: { 'Content-Type': 'application/json' } });
        return new Response(JSON.stringify({ title: 'Busy', status: 409, detail: 'A reply is already being generated.', code: 'busy' }), {
          status: 409,
          headers: { 'Content-Type': 'application/problem+json' },
        });
      }),
    );
    const ok = await chat.send('Hi');
    expect(ok).toBe(false);
    expect(chat.messages).toEqual([]);
    expect(chat.busy).toBe(false);
  });

  it('marks a reply failed when the stream ends without done', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        if (url === '/api/conversations') return new Response(JSON.stringify(CONV), { status: 201, headers: { 'Content-Type': 'application/json' } });
        if (url === '/api/conversations/c1') return new Response('{}', { status: 500 });
        return sse([['start', { user_message: user, assistant_message: asst }], ['text', { text: 'partial' }]]);
      }),
    );
    await chat.send('Hi');
    const a = chat.messages.find((m) => m.id === 'a1')!;
    expect(a.status).toBe('failed');
    expect(a.content).toBe('partial');
    expect(a.error_message).toMatch(/connection closed/i);
  });

  it('keeps the sibling list from start when done carries only the message itself', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const old = message('a0', 'assistant', 'u1', 'first');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming', siblings: ['a0', 'a1'] };
    const final = { ...asst, status: 'complete', content: 'second', siblings: ['a1'] };
    chat.conversationId = 'c1';
    chat.conversation = CONV;
    chat.messages = [user, old];
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        sse([
          ['start', { user_message: user, assistant_message: asst }],
          ['text', { text: 'second' }],
          ['done', { finish_reason: 'stop', usage: null, message: final }],
        ]),
      ),
    );
    await chat.regenerate('a0');
    expect(chat.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(chat.messages[1].siblings).toEqual(['a0', 'a1']);
  });

  it('marks the reply failed when done carries no stored message, then re-reads', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    const stored = { ...asst, status: 'failed', content: 'partial', error_message: 'stored later' };
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        if (url === '/api/conversations') return new Response(JSON.stringify(CONV), { status: 201, headers: { 'Content-Type': 'application/json' } });
        if (url === '/api/conversations/c1')
          return new Response(JSON.stringify({ conversation: CONV, messages: [user, stored] }), { status: 200, headers: { 'Content-Type': 'application/json' } });
        return sse([
          ['start', { user_message: user, assistant_message: asst }],
          ['text', { text: 'partial' }],
          ['error', { code: 'internal_error', message: 'Could not store the answer.', retryable: true }],
          ['done', { finish_reason: 'error', usage: null, message: null }],
        ]);
      }),
    );
    const ok = await chat.send('Hi');
    expect(ok).toBe(true);
    expect(chat.busy).toBe(false);
    const a = chat.messages.find((m) => m.id === 'a1')!;
    expect(a.status).toBe('failed');
    expect(a.content).toBe('partial');
    await vi.waitFor(() => expect(chat.messages.find((m) => m.id === 'a1')?.error_message).toBe('stored later'));
  });

  it('reattaches to an answer still streaming when the conversation is opened', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1', 'Hel'), status: 'streaming' };
    const final = { ...asst, status: 'complete', content: 'Hello there' };
    const calls: { url: string; init?: RequestInit }[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        calls.push({ url, init });
        if (url === '/api/conversations/c1') return json({ conversation: CONV, messages: [user, asst], summary: null });
        await gate;
        return sseWithIds([
          ['text', { text: 'Hello' }],
          ['text', { text: ' there' }],
          ['done', { finish_reason: 'stop', usage: null, message: final }],
          ['title', { conversation_id: 'c1', title: 'Greeting' }],
        ]);
      }),
    );
    await chat.open('c1');
    // reading the answer live: busy (Stop shown), a follow-up is held back
    expect(chat.busy).toBe(true);
    expect(chat.live?.assistantId).toBe('a1');
    expect(chat.unfinished).toBe(true);
    expect(await chat.send('Another question')).toBe(false);
    expect(calls[1].url).toBe('/api/conversations/c1/messages/a1/events');
    expect(new Headers(calls[1].init?.headers).get('Last-Event-ID')).toBeNull();
    release();
    await vi.waitFor(() => expect(chat.busy).toBe(false));
    expect(chat.messages[1].content).toBe('Hello there');
    expect(chat.messages[1].status).toBe('complete');
    expect(chat.unfinished).toBe(false);
    expect(chat.conversation?.title).toBe('Greeting');
  });

  it('reattaches from the last event id when the stream is cut mid-answer', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    const final = { ...asst, status: 'complete', content: 'one two three' };
    const calls: { url: string; init?: RequestInit }[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        calls.push({ url, init });
        if (url === '/api/conversations') return new Response(JSON.stringify(CONV), { status: 201, headers: { 'Content-Type': 'application/json' } });
        if (url.endsWith('/events')) return sseWithIds([['text', { text: ' three' }], ['done', { finish_reason: 'stop', usage: null, message: final }]], 3);
        return sseWithIds([['start', { user_message: user, assistant_message: asst }], ['text', { text: 'one' }], ['text', { text: ' two' }]], 0);
      }),
    );
    expect(await chat.send('Hi')).toBe(true);
    await vi.waitFor(() => expect(chat.busy).toBe(false));
    const reattach = calls.find((c) => c.url === '/api/conversations/c1/messages/a1/events')!;
    expect(new Headers(reattach.init?.headers).get('Last-Event-ID')).toBe('2');
    expect(chat.messages[1].content).toBe('one two three');
    expect(chat.messages[1].status).toBe('complete');
  });

  it('a resync replaces what the reader had with the answer so far', async () => {
    const user = message('u1', 'user', null, 'Hi');
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        if (url === '/api/conversations/c1') return json({ conversation: CONV, messages: [user, asst], summary: null });
        const head = sseWithIds([['resync', { content: 'So far, ', reasoning: 'r', steps: [], sources: [] }], ['text', { text: 'more' }]], 40);
        const text = await head.text();
        return new Response(
          new ReadableStream<Uint8Array>({
            async start(c) {
              c.enqueue(new TextEncoder().encode(text));
              await gate;
              c.close();
            },
          }),
          { status: 200, headers: { 'Content-Type': 'text/event-stream' } },
        );
      }),
    );
    await chat.open('c1');
    await vi.waitFor(() => expect((chat.live?.blocks.length ?? 0) + (chat.live?.tail.length ?? 0)).toBeGreaterThan(0));
    const live = chat.live!;
    const shown = (live.blocks.map((b) => b.html).join('') + live.tail).replace(/<[^>]+>/g, '');
    expect(shown).toContain('So far, more');
    expect(live.reasoning).toBe('r');
    release();
    await vi.waitFor(() => expect(chat.busy).toBe(false));
  });
});
