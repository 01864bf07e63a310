// KaTeX is loaded on demand (code-split) the first time a message contains math.
import type katexType from 'katex';

type Katex = typeof katexType;
let katex: Katex | null = null;
let loading: Promise<void> | null = null;
const listeners = new Set<() => void>();

export function mathReady(): boolean {
  return katex !== null;
}

/** Subscribe to "KaTeX finished loading". Returns an unsubscribe function. */
export function onMathReady(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function loadMath(): Promise<void> {
  if (katex) return Promise.resolve();
  if (!loading) {
    loading = Promise.all([import('katex'), import('katex/dist/katex.min.css')])
      .then(([mod]) => {
        katex = (mod as unknown as { default: Katex }).default ?? (mod as unknown as Katex);
        for (const fn of listeners) fn();
      })
      .catch(() => {
        loading = null;
      });
  }
  return loading;
}

/** For tests: provide KaTeX synchronously. */
export function setKatexForTests(k: Katex | null): void {
  katex = k;
}

/** KaTeX HTML, or null while KaTeX is not loaded yet (a load is started). */
export function renderMath(tex: string, display: boolean): string | null {
  if (!katex) {
    void loadMath();
    return null;
  }
  try {
    return katex.renderToString(tex, {
      displayMode: display,
      throwOnError: false,
      output: 'htmlAndMathml',
      trust: false,
      strict: 'ignore',
      maxSize: 50,
      maxExpand: 500,
    });
  } catch {
    return null;
  }
}
