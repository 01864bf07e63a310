import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Sources from '../src/components/tools/Sources.svelte';
import ToolConfirm from '../src/components/tools/ToolConfirm.svelte';
import { chat } from '../src/lib/stores/chat.svelte';
import { toolCalls } from '../src/lib/stores/tools.svelte';
import { effectiveTools, parsePairs, prettyArguments, safeHttpUrl, toggleTool, webLinks } from '../src/lib/tools';
import type { MessageSource, ToolInfo } from '../src/lib/api/types';
import { conversation, message as build } from './fixtures';

const ALL: ToolInfo[] = [
  { name: 'calculator', title: 'Calculator', summary: '', description: '', side_effecting: false, source: 'builtin', parameters: {} },
  { name: 'fetch_page', title: 'Read a web page', summary: '', description: '', side_effecting: false, source: 'web', parameters: {} },
  { name: 'fx__delete', title: 'Fx delete', summary: '', description: '', side_effecting: true, source: 'mcp', parameters: {} },
];

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  toolCalls.settle();
  toolCalls.liveSources = {};
});

describe('tool selection helpers', () => {
  it('treats null as every tool and drops names that no longer exist', () => {
    expect(effectiveTools(null, ALL)).toEqual(['calculator', 'fetch_page', 'fx__delete']);
    expect(effectiveTools(['fetch_page', 'gone'], ALL)).toEqual(['fetch_page']);
    expect(effectiveTools([], ALL)).toEqual([]);
  });

  it('toggles from the effective set', () => {
    expect(toggleTool(null, ALL, 'fx__delete')).toEqual(['calculator', 'fetch_page']);
    expect(toggleTool(['calculator'], ALL, 'fetch_page')).toEqual(['calculator', 'fetch_page']);
    expect(toggleTool(['calculator'], ALL, 'calculator')).toEqual([]);
  });
});

describe('links and arguments', () => {
  it('keeps only http(s) sources, once each', () => {
    expect(safeHttpUrl('javascript:alert(1)')).toBeNull();
    expect(safeHttpUrl('data:text/html,x')).toBeNull();
    expect(safeHttpUrl('https://a.example/x')).toBe('https://a.example/x');
    const links = webLinks([
      { kind: 'web', title: 'A', url: 'https://a.example/x', snippet: 's' },
      { kind: 'web', title: 'A again', url: 'https://a.example/x', snippet: '' },
      { kind: 'web', title: 'evil', url: 'javascript:alert(1)', snippet: '' },
      { kind: 'memory', id: 'm1', title: 'not a link' },
    ]);
    expect(links).toEqual([{ title: 'A', url: 'https://a.example/x', host: 'a.example', snippet: 's', ref: null }]);
  });

  it('pretty-prints JSON arguments and parses KEY=value lines', () => {
    expect(prettyArguments('{"to":"x"}')).toBe('{\n  "to": "x"\n}');
    expect(prettyArguments('not json')).toBe('not json');
    expect(parsePairs('A=1\n\nB = two=2\nbad')).toEqual({ A: '1', B: 'two=2' });
  });
});

describe('Sources', () => {
  it('renders cited pages as safe external links', () => {
    const { getByTestId, container } = render(Sources, {
      sources: [
        { kind: 'web', title: '<b>Otters</b>', url: 'https://example.org/otters', snippet: 'hold hands' },
        { kind: 'web', title: 'x', url: 'javascript:alert(1)', snippet: '' },
      ] satisfies MessageSource[],
    });
    expect(getByTestId('sources').querySelector('summary')!.textContent).toBe('Sources (1)');
    const links = container.querySelectorAll('a');
    expect(links).toHaveLength(1);
    expect(links[0].getAttribute('href')).toBe('https://example.org/otters');
    expect(links[0].getAttribute('rel')).toBe('noopener noreferrer');
    expect(links[0].textContent).toBe('<b>Otters</b>');
    expect(container.querySelector('b')).toBeNull();
  });

  it('renders nothing without web sources', () => {
    const { container } = render(Sources, { sources: [{ kind: 'memory', id: 'm1', title: 'm' }] });
    expect(container.querySelector('[data-testid=sources]')).toBeNull();
  });
});

describe('ToolConfirm', () => {
  it('shows the call as text and sends the decision', async () => {
    document.cookie = 'parley_csrf=tok; path=/';
    const calls: { url: string; init?: RequestInit }[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        calls.push({ url, init });
        if (url.endsWith('/tool-calls')) return json({ items: [{ id: 'e1', conversation_id: 'c1', name: 'send_email', arguments: '{"to":"<i>x</i>"}' }] });
        return json({ id: 'e1', status: 'denied' });
      }),
    );
    const { findByTestId, container, queryByTestId } = render(ToolConfirm, { conversationId: 'c1' });
    const args = await findByTestId('tool-confirm-args');
    expect(args.textContent).toContain('"to": "<i>x</i>"');
    expect(container.querySelector('i')).toBeNull();
    await fireEvent.click(await findByTestId('tool-deny'));
    await vi.waitFor(() => expect(queryByTestId('tool-confirm')).toBeNull());
    const post = calls.find((c) => c.init?.method === 'POST')!;
    expect(post.url).toBe('/api/conversations/c1/tool-calls/e1');
    expect(JSON.parse(String(post.init!.body))).toEqual({ approve: false });
    expect(new Headers(post.init!.headers).get('X-CSRF-Token')).toBe('tok');
  });
});

describe('chat stream with tool events', () => {
  const message = (id: string, role: string, parent: string | null) => build(id, role, parent, { conversation_id: 'c9', status: 'streaming' });

  it('asks while the turn waits, shows live sources, and clears the question at the end', async () => {
    const conv = conversation('c9');
    const encoder = new TextEncoder();
    const frame = (e: string, d: unknown) => encoder.encode(`event: ${e}\ndata: ${JSON.stringify(d)}\n\n`);
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => (url === '/api/conversations' ? json(conv, 201) : new Response(body, { headers: { 'Content-Type': 'text/event-stream' } }))),
    );
    const sent = chat.send('mail bob');
    controller.enqueue(frame('start', { user_message: message('u1', 'user', null), assistant_message: message('a1', 'assistant', 'u1') }));
    controller.enqueue(frame('tool_start', { id: 'e1', name: 'send_email', arguments: '{"to":"bob"}' }));
    controller.enqueue(frame('tool_confirm', { id: 'e1', name: 'send_email', arguments: '{"to":"bob"}' }));
    controller.enqueue(frame('sources', { sources: [{ kind: 'web', title: 'B', url: 'https://b.example/', snippet: '' }] }));
    await vi.waitFor(() => expect(toolCalls.pending).toHaveLength(1));
    expect(toolCalls.pending[0]).toMatchObject({ id: 'e1', conversation_id: 'c9', name: 'send_email' });
    expect(toolCalls.liveSources['a1'][0]).toMatchObject({ url: 'https://b.example/' });
    const final = { ...message('a1', 'assistant', 'u1'), status: 'complete', content: 'ok' };
    controller.enqueue(frame('done', { finish_reason: 'stop', usage: null, message: final }));
    controller.close();
    expect(await sent).toBe(true);
    expect(toolCalls.pending).toEqual([]);
    chat.newChat();
  });

  it('keeps a call asked by the stream when an older load of the pending list answers late', async () => {
    let answer!: (r: Response) => void;
    vi.stubGlobal('fetch', vi.fn(() => new Promise<Response>((resolve) => (answer = resolve))));
    const loading = toolCalls.load('c7'); // sent when the new chat opened, before the row existed
    toolCalls.ask('c7', { id: 'n1', name: 'notes__note', arguments: '{}' });
    answer(json({ items: [] }));
    await loading;
    expect(toolCalls.pending.map((p) => p.id)).toEqual(['n1']);
  });
});
