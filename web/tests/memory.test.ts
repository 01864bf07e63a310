import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import MemoriesUsed from '../src/components/memory/MemoriesUsed.svelte';
import MemoryPage from '../src/components/memory/MemoryPage.svelte';
import SummaryNote from '../src/components/memory/SummaryNote.svelte';
import TemporaryToggle from '../src/components/memory/TemporaryToggle.svelte';
import { conversationHref, memorySources } from '../src/lib/memory';
import { chat } from '../src/lib/stores/chat.svelte';
import { conversations } from '../src/lib/stores/conversations.svelte';
import type { Conversation, Message } from '../src/lib/api/types';
import { message } from './fixtures';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

/** `sources` as stored, malformed entries included (the guard must skip them). */
function answer(sources: unknown): Message {
  return { ...message('a1', 'assistant', 'u1', { content: 'ok' }), sources } as unknown as Message;
}

const MEM = (id: string, text: string, extra: Record<string, unknown> = {}) => ({
  id, text, source: 'explicit', status: 'active', scope_type: null, scope_id: null, conversation_id: 'c1',
  message_id: 'm1', url: '/c/c1', created_at: '2026-11-23T00:00:00Z', updated_at: '2026-11-23T00:00:00Z', ...extra,
});

describe('memory sources', () => {
  it('keeps well-formed memory and conversation sources, once each, without deleted ones', () => {
    const used = memorySources(answer([
      { kind: 'memory', id: 'm1', title: "I'm vegetarian." },
      { kind: 'memory', id: 'm1', title: "I'm vegetarian." },
      { kind: 'memory', id: 'm2', title: 'Old fact.', action: 'deleted' },
      { kind: 'conversation', id: 'c9', title: 'Otters', url: '/c/c9' },
      { kind: 'web', id: 'w', title: 'page', url: 'https://x.example' },
      { kind: 'memory', title: 'no id' },
      'junk',
    ]));
    expect(used.memories.map((m) => m.id)).toEqual(['m1']);
    expect(used.conversations.map((c) => c.id)).toEqual(['c9']);
    expect(memorySources(answer(undefined))).toEqual({ memories: [], conversations: [] });
  });

  it('links only to Parley conversation ids', () => {
    expect(conversationHref('abc123')).toBe('/c/abc123');
    expect(conversationHref('javascript:alert(1)')).toBeNull();
    expect(conversationHref('../admin')).toBeNull();
    expect(conversationHref(null)).toBeNull();
    expect(conversationHref('abc123', 'm42')).toBe('/c/abc123#m-m42');
    expect(conversationHref('abc123', '"><x')).toBe('/c/abc123');
  });
});

describe('MemoriesUsed', () => {
  it('lists the memories an answer used as text, and cited chats as local links', () => {
    const { getByTestId, getAllByTestId, container } = render(MemoriesUsed, {
      message: answer([
        { kind: 'memory', id: 'm1', title: '<img src=x onerror=alert(1)> I like tea' },
        { kind: 'conversation', id: 'c9', title: 'Otters', url: 'https://evil.example' },
      ]),
    });
    expect(getByTestId('memories-used').textContent).toContain('Memories used (1)');
    expect(getAllByTestId('memory-used')[0].textContent).toContain('<img src=x onerror=alert(1)> I like tea');
    expect(container.querySelector('img')).toBeNull();
    expect(getByTestId('conversation-cited').getAttribute('href')).toBe('/c/c9');
  });

  it('renders nothing without memory sources', () => {
    const { container } = render(MemoriesUsed, { message: answer([]) });
    expect(container.querySelector('[data-testid=memories-used]')).toBeNull();
  });
});

describe('SummaryNote and TemporaryToggle', () => {
  it('shows the stored summary', () => {
    const { getByTestId } = render(SummaryNote, { summary: { text: 'We planned the trip.', until_message_id: 'm3' } });
    expect(getByTestId('summary-note').textContent).toContain('Earlier messages summarized');
    expect(getByTestId('summary-text').textContent).toBe('We planned the trip.');
  });

  it('explains a temporary chat once toggled', async () => {
    const { getByRole, queryByTestId } = render(TemporaryToggle, { checked: false });
    expect(queryByTestId('temporary-hint')).toBeNull();
    await fireEvent.click(getByRole('checkbox'));
    expect(queryByTestId('temporary-hint')).not.toBeNull();
  });
});

describe('chat store and temporary chats', () => {
  it('creates the next chat as temporary and deletes it when the user leaves', async () => {
    document.cookie = 'parley_csrf=tok; path=/';
    const calls: { url: string; method: string; body: string | null }[] = [];
    vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, method: init.method || 'GET', body: (init.body as string) ?? null });
      if (url === '/api/conversations' && init.method === 'POST') {
        return new Response(JSON.stringify({ id: 't1', title: null, model: null, pinned: false, archived: false, temporary: true,
          created_at: '2026-11-23T00:00:00Z', updated_at: '2026-11-23T00:00:00Z' }), { status: 201, headers: { 'Content-Type': 'application/json' } });
      }
      if (init.method === 'DELETE') return new Response(null, { status: 204 });
      return new Response(JSON.stringify({ type: 'about:blank', title: 'x', status: 500, detail: 'no', code: 'x' }), { status: 500 });
    }));
    chat.newChat();
    chat.draftTemporary = true;
    await chat.send('hello');
    const create = calls.find((c) => c.url === '/api/conversations');
    expect(JSON.parse(create!.body!)).toMatchObject({ temporary: true });
    chat.newChat();
    await waitFor(() => expect(calls.some((c) => c.method === 'DELETE' && c.url === '/api/conversations/t1')).toBe(true));
    expect(chat.draftTemporary).toBe(false);
  });
});

describe('MemoryPage', () => {
  it('lists, approves pending and deletes memories', async () => {
    document.cookie = 'parley_csrf=tok; path=/';
    const calls: string[] = [];
    let pending = [MEM('p1', 'I play the cello.', { status: 'pending', source: 'auto' })];
    vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit = {}) => {
      const method = init.method || 'GET';
      calls.push(`${method} ${url}`);
      const json = (v: unknown, status = 200) => new Response(JSON.stringify(v), { status, headers: { 'Content-Type': 'application/json' } });
      if (method === 'GET' && url.includes('status=pending')) {
        return json({ items: pending, next_cursor: null, counts: {}, settings: { enabled: true, review: true } });
      }
      if (method === 'GET') {
        return json({ items: [MEM('m1', 'I live in Lyon.')], next_cursor: null, counts: { active: 1 }, settings: { enabled: true, review: true } });
      }
      if (url.endsWith('/approve')) {
        pending = [];
        return json(MEM('p1', 'I play the cello.'));
      }
      return new Response(null, { status: 204 });
    }));
    const { findAllByTestId, getByTestId, findByTestId, queryByTestId } = render(MemoryPage);
    const items = await findAllByTestId('memory-item');
    expect(items[0].textContent).toContain('I live in Lyon.');
    expect(getByTestId('memory-source-link').getAttribute('href')).toBe('/c/c1#m-m1');
    await fireEvent.click(await findByTestId('memory-approve'));
    await waitFor(() => expect(calls).toContain('POST /api/memories/p1/approve'));
    await waitFor(() => expect(queryByTestId('memory-pending')).toBeNull());
    await fireEvent.click(getByTestId('memory-delete'));
    await waitFor(() => expect(calls).toContain('DELETE /api/memories/m1'));
    await waitFor(() => expect(getByTestId('memory-empty').textContent).toContain('Nothing remembered yet.'));
  });
});

describe('temporary chats in the sidebar', () => {
  it('are never listed, even after a turn updates them', () => {
    const base = { id: 't1', title: null, model: null, pinned: false, archived: false, created_at: '2026-11-22T00:00:00Z', updated_at: '2026-11-22T00:00:00Z' };
    conversations.upsert({ ...base, temporary: true } as unknown as Conversation, true);
    expect(conversations.get('t1')).toBeUndefined();
    conversations.upsert({ ...base, id: 'k1', temporary: false } as unknown as Conversation, true);
    expect(conversations.get('k1')?.id).toBe('k1');
    conversations.remove('k1');
  });
});
