import katex from 'katex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockSplitter, splitBlocks } from '../src/lib/markdown/blocks';
import { setKatexForTests } from '../src/lib/markdown/math';
import { clearRenderCache, renderMarkdown, renderStats } from '../src/lib/markdown/render';
import { StreamingMarkdown, renderDocument } from '../src/lib/markdown/stream';

const DOC = [
  '# Title',
  '',
  'First paragraph with **bold** text.',
  '',
  '```python',
  'def f():',
  '',
  '    return 1',
  '```',
  '',
  '- item one',
  '',
  '  continued item',
  '- item two',
  '',
  '| a | b |',
  '|---|---|',
  '| 1 | 2 |',
  '',
  '$$',
  'x^2',
  '',
  '$$',
  '',
  'Last paragraph.',
].join('\n');

describe('BlockSplitter', () => {
  it('splits on blank lines but not inside fences, math or list continuations', () => {
    const blocks = splitBlocks(DOC);
    expect(blocks.map((b) => b.trim().split('\n')[0])).toEqual([
      '# Title',
      'First paragraph with **bold** text.',
      '```python',
      '- item one',
      '| a | b |',
      '$$',
      'Last paragraph.',
    ]);
  });

  it('gives the same blocks however the text is chunked', () => {
    const whole = splitBlocks(DOC);
    for (const size of [1, 2, 3, 7, 13]) {
      const s = new BlockSplitter();
      for (let i = 0; i < DOC.length; i += size) s.append(DOC.slice(i, i + size));
      s.append('\n');
      expect(s.all()).toEqual(whole);
    }
  });
});

describe('StreamingMarkdown', () => {
  beforeEach(() => clearRenderCache());

  it('renders each finished block once; only the tail re-renders', () => {
    const s = new StreamingMarkdown();
    const start = renderStats.count;
    let flushes = 0;
    const finishedHtml = new Map<string, string>();
    for (const ch of DOC) {
      s.append(ch);
      const { blocks } = s.flush();
      flushes++;
      for (const b of blocks) {
        if (finishedHtml.has(b.key)) expect(finishedHtml.get(b.key)).toBe(b.html); // never changes
        finishedHtml.set(b.key, b.html);
      }
    }
    const renders = renderStats.count - start;
    // One render per flush for the tail + one per finished block, never more.
    expect(renders).toBeLessThanOrEqual(flushes + finishedHtml.size);
    // And the finished blocks really were rendered exactly once each.
    const before = renderStats.count;
    s.flush();
    expect(renderStats.count - before).toBe(0);
  });

  it('does not re-render when nothing changed', () => {
    const s = new StreamingMarkdown();
    s.append('Hello\n\nWorld');
    s.flush();
    const before = renderStats.count;
    s.flush();
    s.flush();
    expect(renderStats.count).toBe(before);
  });

  it('coalesces many deltas into one render per flush', () => {
    const s = new StreamingMarkdown();
    const before = renderStats.count;
    for (let i = 0; i < 500; i++) s.append('word ');
    s.flush();
    expect(renderStats.count - before).toBe(1);
  });

  it('final document reuses finished blocks from the cache', () => {
    const s = new StreamingMarkdown();
    s.append(DOC);
    s.flush();
    const before = renderStats.count;
    const blocks = renderDocument(DOC);
    // Only the last block (which was the tail) needs a render.
    expect(renderStats.count - before).toBe(1);
    expect(blocks.length).toBe(7);
    const again = renderStats.count;
    renderDocument(DOC);
    expect(renderStats.count).toBe(again);
  });

  it('renders broken markup mid-stream without throwing', () => {
    const s = new StreamingMarkdown();
    for (const ch of '**bold _ital `code\n\n| a |\n|--\n\n```js\nlet x = 1') {
      s.append(ch);
      expect(() => s.flush()).not.toThrow();
    }
  });
});

describe('math with KaTeX', () => {
  beforeEach(() => {
    setKatexForTests(katex);
    clearRenderCache();
  });
  afterEach(() => setKatexForTests(null));

  it('renders inline and display math', () => {
    const d = document.createElement('div');
    d.innerHTML = renderMarkdown('Inline $a^2 + b^2$ and\n\n$$\\int_0^1 x\\,dx$$');
    expect(d.querySelectorAll('.katex').length).toBe(2);
    expect(d.querySelector('.katex-display')).not.toBeNull();
  });

  it('keeps KaTeX untrusted commands inert', () => {
    const d = document.createElement('div');
    d.innerHTML = renderMarkdown('$\\href{javascript:alert(1)}{x}$ $\\url{javascript:alert(1)}$');
    expect(d.querySelector('a')).toBeNull();
    expect(d.innerHTML).not.toMatch(/href="javascript/i);
  });
});
