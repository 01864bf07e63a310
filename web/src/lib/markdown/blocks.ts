// Incremental splitter: turns a growing markdown string into finished blocks
// plus a growing tail. Work per append is proportional to the appended text.
//
// A block boundary is a blank line (or the end of a fenced code / $$ math block)
// outside fences, confirmed once the next line's first character is known and
// is not indentation (which would make it a continuation, e.g. of a list item).

export const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})([^`]*)$/;

export class BlockSplitter {
  // Only the appended chunk and the unfinished block are ever searched or sliced:
  // searching the whole growing string would make V8 flatten (copy) it per append.
  private text = '';
  private cur = ''; // the unfinished block, up to what has been scanned
  private line = ''; // the current line so far
  private pending = false; // a blank line ended the block, if the next line is not indented
  private blockHasText = false;
  private fence: { ch: string; len: number } | null = null;
  private fenceAtStart = false;
  private fenceLang = '';
  private code: string[] = [];
  private inMath = false;
  readonly blocks: string[] = [];

  /** Append text; returns how many blocks were finished by this call. */
  append(chunk: string): number {
    if (!chunk) return 0;
    this.text += chunk;
    const before = this.blocks.length;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.pending && this.line === '') {
        const c = chunk[pos];
        if (c === ' ' || c === '\t') this.pending = false;
        else if (c !== '\n' && c !== '\r') this.commit();
      }
      const nl = chunk.indexOf('\n', pos);
      if (nl === -1) {
        const rest = chunk.slice(pos);
        this.line += rest;
        this.cur += rest;
        break;
      }
      this.cur += chunk.slice(pos, nl + 1);
      let line = this.line + chunk.slice(pos, nl);
      this.line = '';
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.processLine(line);
      pos = nl + 1;
    }
    return this.blocks.length - before;
  }

  get source(): string {
    return this.text;
  }

  /** Whether the unfinished remainder is inside an open code fence. */
  get inFence(): boolean {
    return this.fence !== null;
  }

  /** The open fence, when it starts the unfinished block: its info string, its complete
   * code lines so far (a live array: only appended to) and the line being written. */
  get openFence(): { lang: string; lines: readonly string[]; partial: string } | null {
    return this.fence && this.fenceAtStart ? { lang: this.fenceLang, lines: this.code, partial: this.line } : null;
  }

  /** The unfinished remainder (may be empty). */
  get tail(): string {
    return this.cur;
  }

  /** All blocks of a complete document (finished blocks + the tail, if any). */
  all(): string[] {
    const t = this.tail;
    return t.trim() ? [...this.blocks, t] : [...this.blocks];
  }

  private commit(): void {
    if (this.cur.trim()) this.blocks.push(this.cur);
    this.cur = '';
    this.pending = false;
    this.blockHasText = false;
  }

  private processLine(line: string): void {
    if (this.fence) {
      const m = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (m && m[1][0] === this.fence.ch && m[1].length >= this.fence.len) {
        this.fence = null;
        this.pending = true;
      } else {
        this.code.push(line);
      }
      return;
    }
    if (this.inMath) {
      const t = line.trim();
      if (t === '$$' || t === '\\]' || t.endsWith('$$') || t.endsWith('\\]')) {
        this.inMath = false;
        this.pending = true;
      }
      return;
    }
    const f = FENCE_OPEN.exec(line);
    if (f && !(f[1][0] === '`' && f[2].includes('`'))) {
      this.fence = { ch: f[1][0], len: f[1].length };
      this.fenceAtStart = !this.blockHasText;
      this.fenceLang = f[2];
      this.code = [];
      this.blockHasText = true;
      return;
    }
    const t = line.trim();
    if (t === '$$' || t === '\\[' || (t.startsWith('$$') && !t.slice(2).includes('$$')) || (t.startsWith('\\[') && !t.includes('\\]'))) {
      this.inMath = true;
      this.blockHasText = true;
      return;
    }
    if (t === '') {
      if (!this.blockHasText) this.cur = ''; // skip leading blank lines
      else this.pending = true;
    } else {
      this.blockHasText = true;
    }
  }
}

/** Split a complete markdown document into blocks. */
export function splitBlocks(src: string): string[] {
  const s = new BlockSplitter();
  s.append(src.endsWith('\n') ? src : src + '\n');
  return s.all();
}
