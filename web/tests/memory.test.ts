import { describe, expect, it } from 'vitest';
import { memoryChanges, memorySources } from '../src/lib/memory';
import type { Message } from '../src/lib/api/types';

const sources = [
  { kind: 'memory', id: 'm1', title: "I'm vegetarian.", action: 'added' },
  { kind: 'memory', id: 'm1', title: "I'm vegetarian.", action: 'merged' },
  { kind: 'memory', id: 'm2', title: 'I live in Berlin.' },
  { kind: 'memory', id: 'm3', title: 'I like tea.', action: 'merged' },
  { kind: 'conversation', id: 'c1', title: 'Earlier', url: '/c/c1' },
] as Message['sources'];

describe('memory chip and memories used', () => {
  it('lists the memories a turn changed once each, a real change over "merged"', () => {
    expect(memoryChanges(sources).map((m) => [m.id, m.action])).toEqual([
      ['m1', 'added'],
      ['m3', 'merged'],
    ]);
    expect(memoryChanges(null)).toEqual([]);
  });

  it('counts as used only the memories given to the answer', () => {
    const used = memorySources({ sources });
    expect(used.memories.map((m) => m.id)).toEqual(['m2']);
    expect(used.conversations.map((c) => c.id)).toEqual(['c1']);
  });
});
