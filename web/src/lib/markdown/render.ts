// Markdown -> sanitized HTML, one block at a time, with a cache so that
// finished blocks are rendered exactly once.
import { Marked, type Tokens, type TokenizerAndRendererExtension } from 'marked';
import { escapeHtml, highlight } from './highlight';
import { mathReady, renderMath } from './math';
import { safeImageSrc, sanitizeHtml } from './sanitize';

const LANG_RE = /^[\w+#.-]{1,32}$/;

function mathHtml(tex: string, display: boolean): string {
  const html = renderMath(tex, display);
  if (html !== null) return display ? `<div class="math-display">${html}</div>` : html;
  const src = display ? `$$${tex}$$` : `$${tex}$`;
  return display
    ? `<div class="math-pending"><code>${escapeHtml(src)}</code></div>`
    : `<code class="math-pending">${escapeHtml(src)}</code>`;
}

const blockMath: TokenizerAndRendererExtension = {
  name: 'blockMath',
  level: 'block',
  start(src: string) {
    const m = /\$\$|\\\[/.exec(src);
    return m ? m.index : undefined;
  },
  tokenizer(src: string) {
    const m = /^ {0,3}\$\$([\s\S]+?)\$\$[ \t]*(?:\n|$)/.exec(src) || /^ {0,3}\\\[([\s\S]+?)\\\][ \t]*(?:\n|$)/.exec(src);
    if (m) return { type: 'blockMath', raw: m[0], text: m[1].trim() };
    return undefined;
  },
  renderer(token) {
    return mathHtml(String(token.text), true);
  },
};

const inlineMath: TokenizerAndRendererExtension = {
  name: 'inlineMath',
  level: 'inline',
  start(src: string) {
    const m = /\$|\\\(/.exec(src);
    return m ? m.index : undefined;
  },
  tokenizer(src: string) {
    let m = /^\$\$([^$\n]+?)\$\$/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display: true };
    m = /^\$(?![\s$])((?:\\.|[^\\$\n])+?)(?<![\s\\])\$(?!\d)/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1], display: false };
    m = /^\\\(([\s\S]+?)\\\)/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display: false };
    return undefined;
  },
  renderer(token) {
    return mathHtml(String(token.text), Boolean(token.display));
  },
};

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  extensions: [blockMath, inlineMath],
  renderer: {
    // Raw HTML from model output is shown as text, never interpreted.
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code) {
      const language = (lang || '').trim().split(/\s+/)[0] || '';
      const safeLang = LANG_RE.test(language) ? language : '';
      const body = highlight(text, safeLang);
      const label = safeLang ? escapeHtml(safeLang) : 'text';
      return (
        `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
        `<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>` +
        `<pre><code class="hljs${safeLang ? ` language-${escapeHtml(safeLang)}` : ''}">${body}</code></pre></div>`
      );
    },
    image({ href, text }: Tokens.Image) {
      const u = safeImageSrc(href);
      if (!u) return `<span class="img-blocked">[image${text ? `: ${escapeHtml(text)}` : ''}]</span>`;
      return (
        `<button type="button" class="img-load" data-src="${escapeHtml(u.href)}" data-alt="${escapeHtml(text || '')}">` +
        `Load image from ${escapeHtml(u.host)}</button>`
      );
    },
    table(token: Tokens.Table) {
      // Wrap tables so they scroll horizontally on small screens.
      const head = token.header
        .map((cell, i) => {
          const align = token.align[i];
          return `<th${align ? ` align="${align}"` : ''}>${this.parser.parseInline(cell.tokens)}</th>`;
        })
        .join('');
      const rows = token.rows
        .map(
          (row) =>
            '<tr>' +
            row
              .map((cell, i) => {
                const align = token.align[i];
                return `<td${align ? ` align="${align}"` : ''}>${this.parser.parseInline(cell.tokens)}</td>`;
              })
              .join('') +
            '</tr>',
        )
        .join('');
      return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead>${rows ? `<tbody>${rows}</tbody>` : ''}</table></div>`;
    },
  },
});

/** One piece of a code block that is still streaming (see stream.ts): highlighted on
 * its own, joined to its neighbours by CSS; only the first piece has the header. */
export function renderCodePart(code: string, lang: string, first: boolean): string {
  renderStats.count++;
  const language = lang.trim().split(/\s+/)[0] || '';
  const safeLang = LANG_RE.test(language) ? language : '';
  const head = first ? `<div class="code-head"><span class="code-lang">${safeLang ? escapeHtml(safeLang) : 'text'}</span></div>` : '';
  return sanitizeHtml(
    `<div class="code-block code-part${first ? ' code-first' : ''}">${head}` +
      `<pre><code class="hljs${safeLang ? ` language-${escapeHtml(safeLang)}` : ''}">${highlight(code, safeLang)}</code></pre></div>`,
  );
}

/** Counts real renders (cache misses); used by tests and for diagnostics. */
export const renderStats = { count: 0 };

const CACHE_MAX = 3000;
const cache = new Map<string, string>();

/** Render one markdown block to sanitized HTML (no cache). */
export function renderBlockUncached(src: string): string {
  renderStats.count++;
  const html = marked.parse(src, { async: false }) as string;
  return sanitizeHtml(html);
}

/** Render one markdown block, cached by its source text. */
export function renderBlock(src: string): string {
  const key = (mathReady() ? '1' : '0') + src;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit); // LRU touch
    return hit;
  }
  const html = renderBlockUncached(src);
  cache.set(key, html);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string);
  return html;
}

/** Render a whole document (not cached as a unit); for tests and small snippets. */
export function renderMarkdown(src: string): string {
  return renderBlockUncached(src);
}

export function clearRenderCache(): void {
  cache.clear();
}

export function hasMath(src: string): boolean {
  return /\$|\\\(|\\\[/.test(src);
}
