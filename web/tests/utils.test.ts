import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildHeaders, readCookie, request, setUnauthorizedHandler, ApiError } from '../src/lib/api/client';
import { dateGroup, groupConversations } from '../src/lib/dates';
import { highlightNodes, highlightSegments } from '../src/lib/highlight-text';
import type { Conversation } from '../src/lib/api/types';
import { conversation } from './fixtures';

function conv(id: string, updated_at: string, pinned = false): Conversation {
  return conversation(id, { title: id, pinned, created_at: updated_at, updated_at });
}

describe('date grouping', () => {
  const now = new Date(2026, 10, 22, 10, 0, 0); // 22 Nov 2026 10:00 local
  const at = (d: number, h = 12) => new Date(2026, 10, d, h, 0, 0).toISOString();

  it('classifies by local calendar day', () => {
    expect(dateGroup(at(22, 0), now)).toBe('Today');
    expect(dateGroup(at(21, 23), now)).toBe('Yesterday');
    expect(dateGroup(at(21, 0), now)).toBe('Yesterday');
    expect(dateGroup(at(20), now)).toBe('Previous 7 days');
    expect(dateGroup(at(15), now)).toBe('Previous 7 days');
    expect(dateGroup(at(14), now)).toBe('Older');
    expect(dateGroup('not a date', now)).toBe('Older');
  });

  it('puts pinned on top and keeps server order inside groups', () => {
    const groups = groupConversations(
      [conv('a', at(22)), conv('p', at(1), true), conv('b', at(22, 1)), conv('c', at(21)), conv('d', at(2))],
      now,
    );
    expect(groups.map((g) => [g.name, g.items.map((c) => c.id)])).toEqual([
      ['Pinned', ['p']],
      ['Today', ['a', 'b']],
      ['Yesterday', ['c']],
      ['Older', ['d']],
    ]);
  });
});

describe('search highlights', () => {
  it('builds segments from offsets', () => {
    expect(highlightSegments('hello world', [[0, 5]])).toEqual([
      { text: 'hello', mark: true },
      { text: ' world', mark: false },
    ]);
  });

  it('merges overlaps, sorts, and clamps bad offsets', () => {
    expect(highlightSegments('abcdef', [[4, 99], [1, 3], [2, 4], [-5, 0], [3, 3]])).toEqual([
      { text: 'a', mark: false },
      { text: 'bcdef', mark: true },
    ]);
  });

  it('uses code-point offsets (emoji safe)', () => {
    expect(highlightSegments('🎉 party time', [[2, 7]])).toEqual([
      { text: '🎉 ', mark: false },
      { text: 'party', mark: true },
      { text: ' time', mark: false },
    ]);
  });

  it('never interprets HTML in snippets', () => {
    const nodes = highlightNodes(document, '<img src=x onerror=alert(1)> found', [[29, 34]]);
    const div = document.createElement('div');
    div.append(...nodes);
    expect(div.querySelector('img')).toBeNull();
    expect(div.querySelector('mark')!.textContent).toBe('found');
    expect(div.textContent).toBe('<img src=x onerror=alert(1)> found');
  });
});

describe('API client CSRF and auth', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    document.cookie = 'parley_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/';
    setUnauthorizedHandler(null);
  });

  it('reads cookies', () => {
    expect(readCookie('parley_csrf', 'a=1; parley_csrf=tok%3D1; b=2')).toBe('tok=1');
    expect(readCookie('parley_csrf', 'a=1')).toBeNull();
  });

  it('adds X-CSRF-Token on unsafe methods only', () => {
    document.cookie = 'parley_csrf=abc123; path=/';
    for (const m of ['POST', 'PATCH', 'PUT', 'DELETE', 'post']) expect(buildHeaders(m, true).get('X-CSRF-Token')).toBe('abc123');
    for (const m of ['GET', 'HEAD']) expect(buildHeaders(m, false).get('X-CSRF-Token')).toBeNull();
  });

  it('sends the header and same-origin credentials through fetch', async () => {
    document.cookie = 'parley_csrf=xyz; path=/';
    const fetchMock = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal('fetch', fetchMock);
    await request('/api/conversations/1', { method: 'DELETE' });
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(init.credentials).toBe('same-origin');
    expect(new Headers(init.headers).get('X-CSRF-Token')).toBe('xyz');
  });

  it('parses problem+json errors and reports 401s', async () => {
    const onUnauth = vi.fn();
    setUnauthorizedHandler(onUnauth);
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        new Response(JSON.stringify({ title: 'Unauthorized', status: 401, detail: 'Session expired', code: 'unauthorized' }), {
          status: 401,
          headers: { 'Content-Type': 'application/problem+json' },
        }),
      ),
    );
    const err = await request('/api/conversations').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('unauthorized');
    expect(onUnauth).toHaveBeenCalledWith('/api/conversations');
    await request('/api/auth/me').catch(() => undefined);
    expect(onUnauth).toHaveBeenCalledTimes(1); // the session probe does not redirect
  });
});

import { parseRoute } from '../src/lib/stores/router.svelte';

describe('router', () => {
  it('parses app routes', () => {
    expect(parseRoute('/')).toEqual({ name: 'home' });
    expect(parseRoute('/c/abc%20d')).toEqual({ name: 'chat', id: 'abc d' });
    expect(parseRoute('/settings')).toEqual({ name: 'settings', tab: 'general' });
    expect(parseRoute('/settings/keys')).toEqual({ name: 'settings', tab: 'keys' });
    expect(parseRoute('/admin/providers')).toEqual({ name: 'admin', tab: 'providers' });
    expect(parseRoute('/login')).toEqual({ name: 'login' });
    expect(parseRoute('/nope')).toEqual({ name: 'home' });
  });
});
