// An answer with tool steps, in the order it happened: text, steps, text.
// Each step records `offset`: the characters (Unicode code points, the server's
// Python string indices) of the answer's text written before it started. Steps
// stored before offsets were recorded have none; they are shown first, before the
// whole text (as answers with steps always were).

export interface Sequenced {
  offset?: number | null;
}

export type AnswerPart<S> =
  | { kind: 'text'; key: string; text: string }
  | { kind: 'steps'; key: string; steps: S[] };

/** The index in `text` (UTF-16) of the code point at `codePoints` (clamped). */
export function codePointIndex(text: string, codePoints: number): number {
  let index = 0;
  for (let n = 0; n < codePoints && index < text.length; n++) {
    const code = text.charCodeAt(index);
    index += code >= 0xd800 && code <= 0xdbff && index + 1 < text.length ? 2 : 1;
  }
  return index;
}

/** How many code points `text` has (what the server counts). */
export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) i++;
    n++;
  }
  return n;
}

/**
 * Split `content` at the steps' offsets: text parts (never blank; each its own
 * block, so the text before and after a step never runs together) and groups of
 * steps that started at the same place, in order. Steps without an offset come
 * first. Keys are stable while the answer grows (for keyed lists).
 */
export function interleave<S extends Sequenced>(content: string, steps: readonly S[]): AnswerPart<S>[] {
  const parts: AnswerPart<S>[] = [];
  const unplaced = steps.filter((s) => s.offset == null);
  if (unplaced.length) parts.push({ kind: 'steps', key: 's-first', steps: unplaced });
  const placed = steps
    .map((step, order) => ({ step, order }))
    .filter(({ step }) => step.offset != null)
    .sort((a, b) => (a.step.offset as number) - (b.step.offset as number) || a.order - b.order);
  let at = 0; // UTF-16 index into content
  let counted = 0; // code points before `at`
  let group: S[] = [];
  const pushText = (end: number) => {
    const text = content.slice(at, end);
    if (text.trim()) parts.push({ kind: 'text', key: `t-${counted}`, text });
  };
  for (const { step } of placed) {
    const offset = step.offset as number;
    if (offset > counted) {
      const end = at + codePointIndex(content.slice(at), offset - counted);
      if (end > at) {
        if (group.length) parts.push({ kind: 'steps', key: `s-${counted}`, steps: group });
        group = [];
        pushText(end);
        counted += codePointLength(content.slice(at, end));
        at = end;
      }
    }
    group.push(step);
  }
  if (group.length) parts.push({ kind: 'steps', key: `s-${counted}`, steps: group });
  pushText(content.length);
  return parts;
}
