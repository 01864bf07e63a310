// A tool turn reads in the order it happened: text, step, text (issue 12 item 6).
import { cleanup, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import MessageItem from '../src/components/chat/MessageItem.svelte';
import { chat } from '../src/lib/stores/chat.svelte';
import { codePointIndex, interleave } from '../src/lib/toolsequence';
import type { ToolStep } from '../src/lib/api/types';
import { conversation, message } from './fixtures';

const BEFORE = 'Let me plot it.';
const AFTER = '\n\nI ran the code.';

function step(id: string, offset?: number): ToolStep {
  return { id, name: 'calculator', arguments: '{}', output: '2', is_error: false, duration_ms: 3, ...(offset == null ? {} : { offset }) };
}

/** The message's content area as a list: "text:<words>" and "steps:<ids>", in DOM order. */
function order(container: HTMLElement): string[] {
  const body = container.querySelector('[data-testid=message-content]')!;
  return Array.from(body.querySelectorAll('[data-testid=message-segment], [data-testid=tool-steps]')).map((el) =>
    el.matches('[data-testid=tool-steps]')
      ? `steps:${el.querySelectorAll('[data-testid=tool-step]').length}`
      : `text:${(el.textContent ?? '').trim()}`,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  chat.newChat();
});

describe('interleave', () => {
  it('splits the text at each step and groups steps that started together', () => {
    const parts = interleave(BEFORE + AFTER, [step('a', BEFORE.length), step('b', BEFORE.length)]);
    expect(parts.map((p) => p.kind)).toEqual(['text', 'steps', 'text']);
    expect(parts[0]).toMatchObject({ text: BEFORE });
    expect(parts[1].kind === 'steps' && parts[1].steps.map((s) => s.id)).toEqual(['a', 'b']);
    expect(parts[2]).toMatchObject({ text: AFTER });
    expect(new Set(parts.map((p) => p.key)).size).toBe(3);
  });

  it('puts steps stored without offsets first, as before', () => {
    const parts = interleave('Glued.Text.', [step('old')]);
    expect(parts.map((p) => p.kind)).toEqual(['steps', 'text']);
  });

  it('counts offsets in code points, as the server does', () => {
    const text = 'Chart 📈 done';
    expect(codePointIndex(text, 7)).toBe(8); // the emoji is two UTF-16 units
    const parts = interleave(text, [step('a', 7)]);
    expect(parts[0]).toMatchObject({ kind: 'text', text: 'Chart 📈' });
    expect(parts[2]).toMatchObject({ kind: 'text', text: ' done' });
  });

  it('a step at the start or the end leaves no empty text', () => {
    expect(interleave('Answer.', [step('a', 0)]).map((p) => p.kind)).toEqual(['steps', 'text']);
    expect(interleave('Answer.', [step('a', 7), step('b', 99)]).map((p) => p.kind)).toEqual(['text', 'steps']);
  });
});

describe('MessageItem', () => {
  it('renders text, step, text in order, as separate paragraphs', () => {
    const msg = message('a1', 'assistant', 'u1', { content: BEFORE + AFTER, steps: [step('t1', BEFORE.length)] });
    const { container } = render(MessageItem, { message: msg });
    expect(order(container)).toEqual(['text:Let me plot it.', 'steps:1', 'text:I ran the code.']);
    const paragraphs = Array.from(container.querySelectorAll('[data-testid=message-segment] p')).map((p) => p.textContent);
    expect(paragraphs).toEqual(['Let me plot it.', 'I ran the code.']); // never "…plot it.I ran the code."
  });

  it('renders an old message (no offsets) with its steps first', () => {
    const msg = message('a1', 'assistant', 'u1', { content: 'It is 2.', steps: [step('t1')] });
    const { container } = render(MessageItem, { message: msg });
    expect(order(container)).toEqual(['steps:1', 'text:It is 2.']);
  });
});

describe('the live stream', () => {
  it('shows the text before a step, the step, then the text after it, while streaming', async () => {
    const user = message('u1', 'user', null, { content: 'Plot' });
    const asst = { ...message('a1', 'assistant', 'u1'), status: 'streaming' };
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const head = [
      ['start', { user_message: user, assistant_message: asst }],
      ['text', { text: 'Let me ' }],
      ['text', { text: 'plot it.' }],
      ['tool_start', { id: 't1', name: 'calculator', arguments: '{}', offset: BEFORE.length }],
      ['tool_result', { id: 't1', name: 'calculator', output: '2', is_error: false, duration_ms: 3, attachments: [] }],
      ['text', { text: '\n\nI ran ' }],
      ['text', { text: 'the code.' }],
    ];
    const final = { ...asst, status: 'complete', content: BEFORE + AFTER, steps: [step('t1', BEFORE.length)] };
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        if (url === '/api/conversations') return new Response(JSON.stringify(conversation('c1')), { status: 201, headers: { 'Content-Type': 'application/json' } });
        const text = head.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
        const done = `event: done\ndata: ${JSON.stringify({ finish_reason: 'stop', usage: null, message: final })}\n\n`;
        return new Response(
          new ReadableStream<Uint8Array>({
            async start(c) {
              c.enqueue(new TextEncoder().encode(text));
              await gate;
              c.enqueue(new TextEncoder().encode(done));
              c.close();
            },
          }),
          { status: 200, headers: { 'Content-Type': 'text/event-stream' } },
        );
      }),
    );
    const sent = chat.send('Plot');
    await vi.waitFor(() => expect(chat.live?.tail || chat.live?.blocks.length).toBeTruthy());
    const live = chat.live!;
    expect(live.parts.map((p) => p.kind)).toEqual(['text', 'steps']);
    expect(live.parts[0]).toMatchObject({ text: BEFORE });
    const { container } = render(MessageItem, { message: chat.messages[1], live });
    expect(order(container)).toEqual(['text:Let me plot it.', 'steps:1', 'text:I ran the code.']);
    cleanup();
    release();
    expect(await sent).toBe(true);
    expect(chat.messages[1].content).toBe(BEFORE + AFTER);
    const done = render(MessageItem, { message: chat.messages[1] });
    expect(order(done.container)).toEqual(['text:Let me plot it.', 'steps:1', 'text:I ran the code.']);
  });
});

describe('ToolsMenu', () => {
  it('is there on the new-chat screen: human names, a draft choice, unavailable tools disabled', async () => {
    const { fireEvent } = await import('@testing-library/svelte');
    const ToolsMenu = (await import('../src/components/tools/ToolsMenu.svelte')).default;
    const list = {
      items: [
        { name: 'calculator', title: 'Calculator', summary: 'Works out arithmetic exactly', description: 'x', side_effecting: false, source: 'builtin', parameters: {} },
        { name: 'web_search', title: 'Web search', summary: 'Searches the web', description: 'x', side_effecting: false, source: 'web', parameters: {} },
      ],
      unavailable: [{ name: 'run_python', title: 'Run code', summary: 'Runs Python', reason: 'Code execution is unavailable: bubblewrap was not found.' }],
      confirm_timeout_s: 60,
    };
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify(list), { status: 200, headers: { 'Content-Type': 'application/json' } })));
    chat.newChat();
    const { getByTestId, getAllByTestId } = render(ToolsMenu);
    await fireEvent.click(getByTestId('tools-menu'));
    await vi.waitFor(() => expect(getAllByTestId('tool-title').map((e) => e.textContent)).toEqual(['Calculator', 'Web search']));
    const off = getByTestId('tool-unavailable-run_python');
    expect(off.querySelector('input')!.disabled).toBe(true);
    expect(off.textContent).toContain('bubblewrap');
    await fireEvent.click(getByTestId('tool-toggle-web_search'));
    expect(chat.draftTools).toEqual(['calculator']);
  });
});
