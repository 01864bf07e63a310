import katex from 'katex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockSplitter, splitBlocks } from '../src/lib/markdown/blocks';
import { setKatexForTests } from '../src/lib/markdown/math';
import { clearRenderCache, renderMarkdown, renderStats } from '../src/lib/markdown/render';
import { CODE_CHUNK, StreamingMarkdown, TAIL_BUDGET, renderDocument } from '../src/lib/markdown/stream';

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

  it('throttles re-rendering a costly tail and says a render is pending', () => {
    let t = 0;
    let seen = renderStats.count;
    // Every render "takes" 10 ms on this clock.
    const s = new StreamingMarkdown(() => {
      if (renderStats.count !== seen) {
        seen = renderStats.count;
        t += 10;
      }
      return t;
    });
    s.append('```js\nlet a = 1;\n');
    expect(s.flush()).toMatchObject({ pending: false });
    const first = s.flush().tail;
    s.append('let b = 2;\n');
    t += 16;
    const throttled = s.flush();
    expect(throttled).toMatchObject({ pending: true, tail: first });
    t += 10 * TAIL_BUDGET;
    const later = s.flush();
    expect(later.pending).toBe(false);
    expect(later.tail).toContain('b');
  });

  it('keeps tail work per frame bounded for a block that never finishes', () => {
    let t = 0;
    let seen = renderStats.count;
    let busy = 0;
    const s = new StreamingMarkdown(() => {
      if (renderStats.count !== seen) {
        seen = renderStats.count;
        const cost = s.source.length * 0.05; // cost grows with the tail's length
        t += cost;
        busy += cost;
      }
      return t;
    });
    for (let i = 0; i < 1000; i++) {
      s.append(`- x${i} = f(${i})\n`); // one list: a block that never finishes
      s.flush();
      t += 16; // one frame
    }
    // Without the throttle this would be ~20x the elapsed time (quadratic); with it,
    // tail rendering stays under about 1 / (1 + TAIL_BUDGET) of it.
    expect(busy / t).toBeLessThan(1.5 / (1 + TAIL_BUDGET));
    t += 1e6;
    expect(s.flush().tail).toContain('x999');
  });

  // 400 highlighted renders: seconds of CPU on a loaded machine, so more than the default 5 s.
  it('streams a long code block in pieces rendered once each', { timeout: 60_000 }, () => {
    const s = new StreamingMarkdown(() => 0);
    s.append('Intro.\n\n```python\n');
    const seen = new Map<string, string>();
    let renders = 0;
    const lines = 10 * CODE_CHUNK;
    for (let i = 0; i < lines; i++) {
      s.append(`x${i} = f(${i})\n`);
      const before = renderStats.count;
      const { blocks, tail } = s.flush();
      renders += renderStats.count - before;
      for (const b of blocks) {
        if (seen.has(b.key)) expect(seen.get(b.key)).toBe(b.html); // frozen pieces never change
        seen.set(b.key, b.html);
      }
      // Only the last lines are re-rendered: the tail never holds more than two pieces' worth.
      expect((tail.match(/\n/g) ?? []).length).toBeLessThan(2 * CODE_CHUNK);
    }
    // One piece per CODE_CHUNK lines, plus one tail render per flush.
    expect(renders).toBeLessThanOrEqual(lines + lines / CODE_CHUNK + 1);
    const { blocks, tail } = s.flush();
    const shown = document.createElement('div');
    shown.innerHTML = blocks.map((b) => b.html).join('') + tail;
    expect(shown.querySelectorAll('.code-head')).toHaveLength(1);
    const code = Array.from(shown.querySelectorAll('code')).map((c) => c.textContent).join('\n');
    expect(code.split('\n')).toEqual(Array.from({ length: lines }, (_, i) => `x${i} = f(${i})`));
    // Closing the fence replaces the pieces with the block rendered whole.
    s.append('```\n\nDone.');
    const closed = s.flush();
    expect(closed.blocks.map((b) => b.key)).toEqual(['b0', 'b1']);
    expect(closed.blocks[1].html).toContain('copy-code');
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
