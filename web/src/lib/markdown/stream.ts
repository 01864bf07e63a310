// Streaming renderer: finished blocks are rendered once; only the tail re-renders.
import { BlockSplitter, splitBlocks } from './blocks';
import { renderBlock, renderBlockUncached, renderCodePart } from './render';

export interface RenderedBlock {
  key: string;
  html: string;
}

/** A tail re-render waits this many times its last render's duration. */
export const TAIL_BUDGET = 6;
/** Lines per frozen piece of a code block that is still streaming. */
export const CODE_CHUNK = 40;

export interface Flushed {
  /** Finished blocks (then the frozen pieces of an open code block). A new array
   * only when it changed. */
  blocks: RenderedBlock[];
  tail: string;
  /** The tail changed but was not re-rendered yet: flush again on a later frame. */
  pending: boolean;
}

export class StreamingMarkdown {
  private splitter = new BlockSplitter();
  private finished: RenderedBlock[] = [];
  private out: RenderedBlock[] = [];
  private tailHtml = '';
  private tailDirty = false;
  private nextTailAt = -Infinity;
  // An open code fence starting the tail: its first `codeLines` lines (whole
  // CODE_CHUNK-line pieces) are rendered once into `pieces`.
  private pieces: RenderedBlock[] = [];
  private codeLines = 0;

  /** `now` is injectable for tests. */
  constructor(private now: () => number = () => performance.now()) {}

  /** Add a delta. Cheap: no rendering happens until flush(). */
  append(delta: string): void {
    if (!delta) return;
    this.splitter.append(delta);
    this.tailDirty = true;
  }

  get source(): string {
    return this.splitter.source;
  }

  /** Render newly finished blocks (once each) and, unless throttled, the current tail.
   *
   * The tail's render cost grows with its length, and some tails never finish while
   * streaming. A long code block is cut into pieces rendered once each, so only its
   * last lines re-render. Any other long tail (a huge list or table) is re-rendered
   * only once TAIL_BUDGET x its previous render time has passed, which caps the
   * main-thread share spent on it; a short tail still renders every frame. */
  flush(): Flushed {
    const blocks = this.splitter.blocks;
    let changed = false;
    for (let i = this.finished.length; i < blocks.length; i++) {
      this.finished.push({ key: `b${i}`, html: renderBlock(blocks[i]) });
      this.tailDirty = true;
      this.nextTailAt = -Infinity; // a new tail: show it at once
      this.pieces = [];
      this.codeLines = 0;
      changed = true;
    }
    if (this.tailDirty) {
      const start = this.now();
      if (start >= this.nextTailAt) {
        const code = this.openCode();
        if (code) changed = code.frozen || changed;
        const t = code ? '' : this.splitter.tail;
        // The tail changes every frame: render without polluting the cache.
        this.tailHtml = code ? code.html : t.trim() ? renderBlockUncached(t) : '';
        this.tailDirty = false;
        const end = this.now();
        this.nextTailAt = end + (end - start) * TAIL_BUDGET;
      }
    }
    if (changed) this.out = this.pieces.length ? [...this.finished, ...this.pieces] : [...this.finished];
    return { blocks: this.out, tail: this.tailHtml, pending: this.tailDirty };
  }

  /** Render an open fence incrementally; null when the tail does not start with one. */
  private openCode(): { html: string; frozen: boolean } | null {
    const open = this.splitter.openFence;
    if (!open) return null;
    const { lang, lines, partial } = open;
    let frozen = false;
    // Freeze whole pieces while at least two pieces' worth of lines are complete.
    while (lines.length - this.codeLines >= 2 * CODE_CHUNK) {
      const key = `b${this.finished.length}c${this.pieces.length}`;
      const code = lines.slice(this.codeLines, this.codeLines + CODE_CHUNK).join('\n');
      this.pieces.push({ key, html: renderCodePart(code, lang, !this.pieces.length) });
      this.codeLines += CODE_CHUNK;
      frozen = true;
    }
    const rest = lines.slice(this.codeLines);
    if (partial) rest.push(partial);
    return { html: renderCodePart(rest.join('\n'), lang, !this.pieces.length), frozen };
  }
}

/** Blocks of a finished message (each served from the block cache when seen before). */
export function renderDocument(src: string): RenderedBlock[] {
  return splitBlocks(src).map((b, i) => ({ key: `b${i}`, html: renderBlock(b) }));
}
