// Incremental splitter: turns a growing markdown string into finished blocks
// plus a growing tail. Work per append is proportional to the appended text.
//
// A block boundary is a blank line (or the end of a fenced code / $$ math block)
// outside fences, confirmed once the next line's first character is known and
// is not indentation (which would make it a continuation, e.g. of a list item).

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})([^`]*)$/;

export class BlockSplitter {
  private text = '';
  private scanned = 0;
  private blockStart = 0;
  private pending = -1; // candidate boundary offset
  private fence: { ch: string; len: number } | null = null;
  private inMath = false;
  readonly blocks: string[] = [];

  /** Append text; returns how many blocks were finished by this call. */
  append(chunk: string): number {
    if (!chunk) return 0;
    this.text += chunk;
    const before = this.blocks.length;
    this.scan();
    return this.blocks.length - before;
  }

  get source(): string {
    return this.text;
  }

  /** The unfinished remainder (may be empty). */
  get tail(): string {
    return this.text.slice(this.blockStart);
  }

  /** All blocks of a complete document (finished blocks + the tail, if any). */
  all(): string[] {
    const t = this.tail;
    return t.trim() ? [...this.blocks, t] : [...this.blocks];
  }

  private commit(at: number): void {
    const block = this.text.slice(this.blockStart, at);
    if (block.trim()) this.blocks.push(block);
    this.blockStart = at;
    this.pending = -1;
  }

  private scan(): void {
    const text = this.text;
    let pos = this.scanned;
    while (pos <= text.length) {
      if (this.pending !== -1 && pos < text.length) {
        const c = text[pos];
        if (c === ' ' || c === '\t') this.pending = -1;
        else if (c !== '\n' && c !== '\r') this.commit(this.pending);
      }
      const nl = text.indexOf('\n', pos);
      if (nl === -1) break;
      let line = text.slice(pos, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.processLine(line, pos, nl + 1);
      pos = nl + 1;
    }
    this.scanned = pos;
  }

  private processLine(line: string, start: number, next: number): void {
    if (this.fence) {
      const m = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (m && m[1][0] === this.fence.ch && m[1].length >= this.fence.len) {
        this.fence = null;
        this.pending = next;
      }
      return;
    }
    if (this.inMath) {
      const t = line.trim();
      if (t === '$$' || t === '\\]' || t.endsWith('$$') || t.endsWith('\\]')) {
        this.inMath = false;
        this.pending = next;
      }
      return;
    }
    const f = FENCE_OPEN.exec(line);
    if (f && !(f[1][0] === '`' && f[2].includes('`'))) {
      this.fence = { ch: f[1][0], len: f[1].length };
      return;
    }
    const t = line.trim();
    if (t === '$$' || t === '\\[' || (t.startsWith('$$') && !t.slice(2).includes('$$')) || (t.startsWith('\\[') && !t.includes('\\]'))) {
      this.inMath = true;
      return;
    }
    if (t === '') {
      if (!this.text.slice(this.blockStart, start).trim()) {
        this.blockStart = next; // skip leading blank lines
        this.pending = -1;
      } else if (this.pending === -1) {
        this.pending = next;
      } else {
        this.pending = next;
      }
    }
  }
}

/** Split a complete markdown document into blocks. */
export function splitBlocks(src: string): string[] {
  const s = new BlockSplitter();
  s.append(src.endsWith('\n') ? src : src + '\n');
  return s.all();
}
