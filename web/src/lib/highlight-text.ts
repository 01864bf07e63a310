// Turn a plain-text snippet + [start, end] offsets into segments that the UI
// renders as text nodes and <mark> elements (never as HTML).

export interface Segment {
  text: string;
  mark: boolean;
}

/**
 * Offsets from the server are code-point offsets (Python string indices).
 * They are converted so that astral characters (emoji) do not shift marks.
 */
export function highlightSegments(snippet: string, highlights: ReadonlyArray<readonly [number, number]> | null | undefined): Segment[] {
  const chars = Array.from(snippet ?? '');
  const n = chars.length;
  const ranges = (highlights ?? [])
    .filter((r) => Array.isArray(r) && r.length >= 2 && Number.isFinite(r[0]) && Number.isFinite(r[1]))
    .map(([s, e]) => [Math.max(0, Math.min(n, Math.floor(s))), Math.max(0, Math.min(n, Math.floor(e)))] as [number, number])
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0]);
  // Merge overlapping or touching ranges.
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const out: Segment[] = [];
  let pos = 0;
  for (const [s, e] of merged) {
    if (s > pos) out.push({ text: chars.slice(pos, s).join(''), mark: false });
    out.push({ text: chars.slice(s, e).join(''), mark: true });
    pos = e;
  }
  if (pos < n) out.push({ text: chars.slice(pos).join(''), mark: false });
  return out;
}

/** Build DOM nodes (text + <mark>) for a snippet; used where Svelte templates are not. */
export function highlightNodes(doc: Document, snippet: string, highlights: ReadonlyArray<readonly [number, number]>): Node[] {
  return highlightSegments(snippet, highlights).map((s) => {
    if (!s.mark) return doc.createTextNode(s.text);
    const m = doc.createElement('mark');
    m.textContent = s.text;
    return m;
  });
}
