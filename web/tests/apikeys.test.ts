import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import ApiKeys from '../src/components/settings/ApiKeys.svelte';
import type { ApiKey } from '../src/lib/api/types';
import { createBody, describeScopes, expiryFor, isExpired, parseList, tryItCommand } from '../src/lib/apikeys';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const NONE = { endpoints: [], models: [], assistants: [], projects: [] };

function key(over: Partial<ApiKey> = {}): ApiKey {
  return {
    id: 'k1',
    name: 'laptop',
    prefix: 'pk-abcdefg',
    created_at: '2026-12-01T10:00:00Z',
    last_used_at: null,
    revoked_at: null,
    expires_at: null,
    scopes: NONE,
    ...over,
  };
}

describe('API key helpers', () => {
  const now = new Date('2026-12-07T12:00:00Z');

  it('computes the expiry of each choice', () => {
    expect(expiryFor('never', '', now)).toBeNull();
    expect(expiryFor('30', '', now)).toBe('2027-01-06T12:00:00.000Z');
    expect(expiryFor('90', '', now)).toBe('2027-03-07T12:00:00.000Z');
    expect(expiryFor('date', '2026-12-01', now)).toBeUndefined(); // in the past
    expect(expiryFor('date', '', now)).toBeUndefined();
    const chosen = expiryFor('date', '2027-02-03', now)!;
    expect(new Date(chosen).getDate()).toBe(3); // the end of that day, local time
  });

  it('sends scopes only when something is limited', () => {
    expect(createBody(' ci ', null, [], ' ', '', [])).toEqual({ name: 'ci', expires_at: null, scopes: null });
    expect(createBody('ci', '2027-01-01T00:00:00Z', ['chat'], 'openai/gpt-4o, local/x,openai/gpt-4o', '', ['p1', 'p1'])).toEqual({
      name: 'ci',
      expires_at: '2027-01-01T00:00:00Z',
      scopes: { endpoints: ['chat'], models: ['openai/gpt-4o', 'local/x'], assistants: [], projects: ['p1'] },
    });
    expect(parseList('a,\n b ,,a')).toEqual(['a', 'b']);
  });

  it('describes scopes and expiry', () => {
    expect(describeScopes(NONE)).toBe('Everything');
    expect(describeScopes({ ...NONE, endpoints: ['chat', 'embeddings'], models: ['openai/gpt-4o'] })).toBe(
      'Chat completions, Embeddings; models: openai/gpt-4o',
    );
    expect(describeScopes({ ...NONE, projects: ['p1', 'gone'] }, { p1: 'Garden' })).toBe('projects: Garden, gone');
    expect(isExpired('2026-12-01T00:00:00Z', now)).toBe(true);
    expect(isExpired(null, now)).toBe(false);
  });
});

describe('ApiKeys', () => {
  it('creates a key with an expiry and scopes, and lists them', async () => {
    const sent: unknown[] = [];
    const listed = [
      key({ id: 'k2', name: 'robot', expires_at: '2020-01-01T00:00:00Z', scopes: { ...NONE, endpoints: ['embeddings'] } }),
      key({ id: 'k3', name: 'garden', expires_at: '2099-01-01T00:00:00Z', scopes: { ...NONE, projects: ['p1'] } }),
      key(),
    ];
    const projects = [
      { id: 'p1', name: 'Garden', role: 'owner' },
      { id: 'p2', name: 'Shed', role: 'editor' },
      { id: 'p3', name: 'Their plans', role: 'viewer' },
    ];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        if (url === '/api/keys' && init?.method === 'POST') {
          sent.push(JSON.parse(String(init.body)));
          return Response.json({ ...key({ name: 'robot' }), key: 'pk-secret' }, { status: 201 });
        }
        if (url === '/api/keys') return Response.json({ items: listed });
        if (url === '/api/projects') return Response.json({ items: projects });
        return Response.json({}, { status: 404 });
      }),
    );
    const { getByTestId, getAllByTestId, getByText } = render(ApiKeys);
    await waitFor(() => expect(getAllByTestId('key-scopes').map((c) => c.textContent)).toEqual(['Embeddings', 'projects: Garden', 'Everything']));
    expect(getByText('Expired')).toBeTruthy();
    expect(getByText('No expiry')).toBeTruthy(); // not "Never": that word is the last-used column's

    await fireEvent.input(getByTestId('key-name'), { target: { value: 'robot' } });
    await fireEvent.change(getByTestId('key-expiry'), { target: { value: '30' } });
    await fireEvent.click(getByTestId('key-scope-embeddings'));
    await fireEvent.input(getByTestId('key-models'), { target: { value: 'embeddings/all-MiniLM-L6-v2' } });
    expect(getByTestId('key-projects').textContent).not.toContain('Their plans'); // a viewer's
    await fireEvent.click(getByTestId('key-project-p2'));
    await fireEvent.click(getByTestId('create-key'));
    await waitFor(() => expect(sent).toHaveLength(1));
    const body = sent[0] as { name: string; expires_at: string; scopes: unknown };
    expect(body.name).toBe('robot');
    expect(new Date(body.expires_at).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(body.scopes).toEqual({ endpoints: ['embeddings'], models: ['embeddings/all-MiniLM-L6-v2'], assistants: [], projects: ['p2'] });
    await waitFor(() => expect(getByTestId('created-key').textContent).toContain('Copy your new key now'));
  });
});

describe('tryItCommand', () => {
  it('is a curl request to this server with the new key', () => {
    const cmd = tryItCommand('http://127.0.0.1:8080', 'pk-abc');
    expect(cmd).toContain('curl http://127.0.0.1:8080/v1/responses');
    expect(cmd).toContain('Authorization: Bearer pk-abc');
    expect(cmd).toContain('"model": "parley"');
  });
});
