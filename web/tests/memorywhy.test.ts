import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import MemoriesUsed from '../src/components/memory/MemoriesUsed.svelte';
import type { Message } from '../src/lib/api/types';
import { whyReasons } from '../src/lib/memory';

afterEach(cleanup);

const why = { rank: 1, score: 0.71, semantic: 0.42, keyword: 0.5, topic: 0.3, profile: 0, floor: 0.2 };

function answer(sources: unknown[]): Message {
  return { id: 'a1', role: 'assistant', content: 'ok', sources } as unknown as Message;
}

describe('why view of the memory chip', () => {
  it('puts the scores into words', () => {
    expect(whyReasons(why)).toEqual(['#1', 'close in meaning to your question', 'shares words with your question', 'on the same topic']);
    expect(whyReasons({ ...why, rank: 3, semantic: 0.1, keyword: 0, topic: 0.5, profile: 0.6 })).toEqual([
      '#3',
      'part of your profile on this topic',
    ]);
  });

  it('shows each used memory with its reasons, and the keyword fallback', async () => {
    const view = render(MemoriesUsed, {
      message: answer([
        { kind: 'memory', id: 'm1', title: 'Lives in Ghent.', why, recall: 'keywords' },
        { kind: 'memory', id: 'm2', title: 'Saved just now.', action: 'added' },
      ]),
    });
    expect(view.getByTestId('memories-used').textContent).toContain('Memories used (1)');
    expect(view.queryByTestId('memory-why')).toBeNull();
    await fireEvent.click(view.getByTestId('memory-why-toggle'));
    const items = view.getAllByTestId('memory-why-item');
    expect(items).toHaveLength(1);
    expect(items[0].textContent).toContain('Lives in Ghent.');
    expect(items[0].textContent).toContain('score 0.71');
    expect(view.getByTestId('memory-why-keywords')).toBeTruthy();
  });

  it('offers no why for memories stored before it existed', () => {
    const view = render(MemoriesUsed, { message: answer([{ kind: 'memory', id: 'm1', title: 'Old.' }]) });
    expect(view.getByTestId('memories-used')).toBeTruthy();
    expect(view.queryByTestId('memory-why-toggle')).toBeNull();
  });
});
