import { describe, expect, it } from 'vitest';
import {
  describeChange,
  emptyDraft,
  isDirty,
  toConfig,
  toDraft,
  toggled,
  versionLabel,
  versionStatus,
} from '../src/lib/assistants';
import { parseRoute } from '../src/lib/stores/router.svelte';

describe('the builder form', () => {
  it('fills every field from a saved config, defaults included', () => {
    const d = toDraft({ name: 'Pirate' });
    expect(d).toEqual({ ...emptyDraft(), name: 'Pirate' });
    expect(toDraft({ name: 'x', memory: 'scoped', temperature: 0.4 }).memory).toBe('scoped');
  });

  it('sends trimmed text and at most four non-empty starters', () => {
    const d = { ...emptyDraft(), name: '  Pirate ', starters: ['a', ' ', 'b ', 'c', 'd', 'e'] };
    const c = toConfig(d);
    expect(c.name).toBe('Pirate');
    expect(c.starters).toEqual(['a', 'b', 'c', 'd']);
    expect(toConfig({ ...d, temperature: Number.NaN }).temperature).toBeNull();
  });

  it('is dirty only when what Save would send differs', () => {
    const saved = { name: 'Pirate', starters: ['Hi'] };
    const d = toDraft(saved);
    expect(isDirty(d, saved)).toBe(false);
    expect(isDirty({ ...d, starters: ['Hi', ''] }, saved)).toBe(false);
    expect(isDirty({ ...d, instructions: 'Arr' }, saved)).toBe(true);
  });

  it('toggles ids without duplicates', () => {
    expect(toggled(['a'], 'b', true)).toEqual(['a', 'b']);
    expect(toggled(['a', 'b'], 'a', true)).toEqual(['b', 'a']);
    expect(toggled(['a', 'b'], 'a', false)).toEqual(['b']);
  });
});

describe('versions in words', () => {
  it('describes list and scalar changes', () => {
    expect(describeChange({ field: 'tools', before: ['a'], after: ['b'], added: ['b'], removed: ['a'] })).toBe(
      'Tools: added b; removed a',
    );
    const names = (_f: string, id: string) => (id === 'f1' ? 'map.txt' : id);
    expect(describeChange({ field: 'file_ids', before: [], after: ['f1'], added: ['f1'], removed: [] }, names)).toBe(
      'Files: added map.txt',
    );
    expect(describeChange({ field: 'model', before: '', after: 'openai/gpt', added: [], removed: [] })).toBe(
      'Model: the default model → openai/gpt',
    );
    expect(describeChange({ field: 'memory', before: 'user', after: 'scoped', added: [], removed: [] })).toBe(
      'Memory: your memories → its own memories',
    );
    expect(describeChange({ field: 'starters', before: ['a', 'b'], after: ['b', 'a'], added: [], removed: [] })).toBe(
      'Conversation starters: reordered',
    );
  });

  it('says which version chats use', () => {
    expect(versionStatus({ draft_version: 2, published_version: 2 })).toBe('Version 2, published');
    expect(versionStatus({ draft_version: 3, published_version: 1 })).toBe('Draft version 3 · chats use version 1');
    expect(versionLabel({ number: 3, note: 'Restored from version 1', draft: true, published: false })).toBe(
      'Version 3 (draft) — Restored from version 1',
    );
  });
});

describe('routes', () => {
  it('has a list and a builder page', () => {
    expect(parseRoute('/assistants')).toEqual({ name: 'assistants' });
    expect(parseRoute('/assistants/new')).toEqual({ name: 'assistant', id: 'new' });
    expect(parseRoute('/assistants/abc')).toEqual({ name: 'assistant', id: 'abc' });
  });
});

describe('answer versions', () => {
  it('maps answers to the version that wrote them', async () => {
    const { answerVersions } = await import('../src/lib/stores/answerVersions.svelte');
    answerVersions.set([
      { message_id: 'a', version: 1 },
      { message_id: 'b', version: 3 },
    ]);
    expect(answerVersions.byMessage).toEqual({ a: 1, b: 3 });
    answerVersions.clear();
    expect(answerVersions.byMessage).toEqual({});
  });
});
