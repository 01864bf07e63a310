import { cleanup, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import MemoryChip from '../src/components/memory/MemoryChip.svelte';
import MemoriesUsed from '../src/components/memory/MemoriesUsed.svelte';
import { forgetProposals, memoryChanges, memorySources } from '../src/lib/memory';
import type { Message } from '../src/lib/api/types';
import { memoryUpdates } from '../src/lib/stores/memoryUpdates.svelte';
import { message } from './fixtures';

afterEach(cleanup);

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

describe('MemoryChip', () => {
  it('shows "Memory updated" with a link to the memory page, not "Memories used"', () => {
    const answer = message('a1', 'assistant', 'u1', { sources: sources.slice(0, 2) });
    const chip = render(MemoryChip, { message: answer });
    expect(chip.getByTestId('memory-updated').textContent).toContain('Memory updated');
    expect(chip.getAllByTestId('memory-updated-item').map((li) => li.textContent)).toEqual(["I'm vegetarian. (saved)"]);
    expect(chip.getByTestId('memory-updated-link').getAttribute('href')).toBe('/settings/memory');
    expect(render(MemoriesUsed, { message: answer }).queryByTestId('memories-used')).toBeNull();
  });

  it('shows the memory_updated event while the answer streams', () => {
    memoryUpdates.add('a2', { memories: [{ kind: 'memory', id: 'm9', title: 'I live in Oslo.', action: 'updated' }], url: '/settings/memory' });
    const chip = render(MemoryChip, { message: message('a2', 'assistant', 'u1', { sources: [] }) });
    expect(chip.getByTestId('memory-updated-item').textContent).toBe('I live in Oslo. (updated)');
  });

  it('shows nothing when the turn changed no memory', () => {
    const chip = render(MemoryChip, { message: message('a3', 'assistant', 'u1', { sources: sources.slice(2, 3) }) });
    expect(chip.queryByTestId('memory-updated')).toBeNull();
  });
});

describe('forget proposals', () => {
  it('groups the memories a forget request lists and keeps them out of "Memory updated"', () => {
    const sources = [
      { kind: 'memory', id: 'm1', title: 'My old job was at Northwind.', action: 'forget_proposed', request: 'r1' },
      { kind: 'memory', id: 'm2', title: 'My boss was Greg.', action: 'forget_proposed', request: 'r1' },
      { kind: 'memory', id: 'm2', title: 'My boss was Greg.', action: 'forget_proposed', request: 'r1' },
      { kind: 'memory', id: 'm3', title: 'I live in Lyon.', action: 'added' },
    ];
    const found = forgetProposals(sources);
    expect([...found.keys()]).toEqual(['r1']);
    expect(found.get('r1')?.map((m) => m.id)).toEqual(['m1', 'm2']);
    expect(memoryChanges(sources).map((m) => m.id)).toEqual(['m3']);
    expect(forgetProposals(undefined).size).toBe(0);
  });
});
