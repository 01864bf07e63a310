// Streaming renderer: finished blocks are rendered once; only the tail re-renders.
import { BlockSplitter, splitBlocks } from './blocks';
import { renderBlock, renderBlockUncached } from './render';

export interface RenderedBlock {
  key: string;
  html: string;
}

export class StreamingMarkdown {
  private splitter = new BlockSplitter();
  private finished: RenderedBlock[] = [];
  private tailHtml = '';
  private tailDirty = false;

  /** Add a delta. Cheap: no rendering happens until flush(). */
  append(delta: string): void {
    if (!delta) return;
    this.splitter.append(delta);
    this.tailDirty = true;
  }

  get source(): string {
    return this.splitter.source;
  }

  /** Render newly finished blocks (once each) and the current tail. */
  flush(): { blocks: RenderedBlock[]; tail: string } {
    const blocks = this.splitter.blocks;
    for (let i = this.finished.length; i < blocks.length; i++) {
      this.finished.push({ key: `b${i}`, html: renderBlock(blocks[i]) });
      this.tailDirty = true;
    }
    if (this.tailDirty) {
      const t = this.splitter.tail;
      // The tail changes every frame: render without polluting the cache.
      this.tailHtml = t.trim() ? renderBlockUncached(t) : '';
      this.tailDirty = false;
    }
    return { blocks: this.finished, tail: this.tailHtml };
  }
}

/** Blocks of a finished message (each served from the block cache when seen before). */
export function renderDocument(src: string): RenderedBlock[] {
  return splitBlocks(src).map((b, i) => ({ key: `b${i}`, html: renderBlock(b) }));
}
