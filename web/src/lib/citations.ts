// Turn "[n]" in a rendered answer into buttons that open the cited passage (files) or
// link chips that open the cited page in a new tab (web search results).
// Only text nodes are touched (never code or links), and only numbers that have a source;
// chips are built with textContent, so nothing from the answer becomes markup, and a web
// chip's href is only ever an http(s) URL (others get no chip).
import { citedSources, splitCitations } from './api-files';
import type { FileSource, MessageSource } from './api/types';
import { safeHttpUrl } from './tools';

/** A numbered web source with a link safe to open. */
export interface WebRef {
  ref: number;
  url: string;
  title: string;
  host: string;
}

export function webRefs(sources: readonly MessageSource[] | null | undefined): WebRef[] {
  const out: WebRef[] = [];
  for (const s of sources ?? []) {
    if (s.kind !== 'web' || typeof s.ref !== 'number') continue;
    const url = safeHttpUrl(s.url);
    if (!url || out.some((o) => o.ref === s.ref)) continue;
    out.push({ ref: s.ref, url, title: s.title || url, host: new URL(url).host.replace(/^www\./, '') });
  }
  return out;
}

export interface CitationOptions {
  sources: readonly MessageSource[] | null | undefined;
  onopen: (source: FileSource) => void;
}

export function linkCitations(root: Node, cited: FileSource[], web: WebRef[] = []): void {
  const refs = new Set([...cited.map((s) => s.ref as number), ...web.map((w) => w.ref)]);
  if (!refs.size || !root.ownerDocument) return;
  const walker = root.ownerDocument.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes: Text[] = [];
  const consider = (text: Text) => {
    if (text.data.includes('[') && !text.parentElement?.closest('code, pre, a, button.cite, .steps')) nodes.push(text);
  };
  if (root.nodeType === Node.TEXT_NODE) consider(root as Text);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) consider(n as Text);
  for (const text of nodes) {
    const parts = splitCitations(text.data, refs);
    if (parts.length === 1 && typeof parts[0] === 'string') continue;
    const frag = root.ownerDocument.createDocumentFragment();
    for (const part of parts) {
      if (typeof part === 'string') {
        frag.append(part);
        continue;
      }
      const source = cited.find((s) => s.ref === part);
      const page = source ? undefined : web.find((w) => w.ref === part);
      if (page) {
        const link = root.ownerDocument.createElement('a');
        link.className = 'cite web-cite';
        link.href = page.url;
        link.target = '_blank';
        link.rel = 'noopener noreferrer';
        link.dataset.ref = String(part);
        link.dataset.testid = 'web-citation';
        link.title = `[${part}] ${page.title}`;
        link.textContent = page.host;
        frag.append(link);
        continue;
      }
      const button = root.ownerDocument.createElement('button');
      button.type = 'button';
      button.className = 'cite';
      button.dataset.ref = String(part);
      button.textContent = `[${part}]`;
      if (source) button.title = source.page != null ? `${source.filename}, page ${source.page}` : source.filename;
      frag.append(button);
    }
    text.replaceWith(frag);
  }
}

/** Svelte action: keeps citations linked while the answer streams and re-renders. */
export function citations(node: HTMLElement, options: CitationOptions) {
  let current = options;
  const run = () => linkCitations(node, citedSources(current.sources), webRefs(current.sources));
  const onClick = (e: Event) => {
    const button = (e.target as HTMLElement | null)?.closest?.('button.cite') as HTMLButtonElement | null;
    if (!button) return;
    const source = citedSources(current.sources).find((s) => String(s.ref) === button.dataset.ref);
    if (source) current.onopen(source);
  };
  // Only what changed is scanned: a whole-answer walk per streamed frame would make
  // the work per token grow with the answer's length.
  const observer = new MutationObserver((records) => {
    const cited = citedSources(current.sources);
    const web = webRefs(current.sources);
    if (!cited.length && !web.length) return;
    for (const r of records) {
      if (r.type === 'characterData') linkCitations(r.target, cited, web);
      else r.addedNodes.forEach((n) => n.isConnected && linkCitations(n, cited, web));
    }
  });
  observer.observe(node, { childList: true, subtree: true, characterData: true });
  node.addEventListener('click', onClick);
  run();
  return {
    update(next: CitationOptions) {
      current = next;
      run();
    },
    destroy() {
      observer.disconnect();
      node.removeEventListener('click', onClick);
    },
  };
}
