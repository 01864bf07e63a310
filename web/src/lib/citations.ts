// Turn "[n]" in a rendered answer into buttons that open the cited passage.
// Only text nodes are touched (never code), and only numbers that have a file source;
// the buttons are built with textContent, so nothing from the answer becomes markup.
import { citedSources, splitCitations } from './api-files';
import type { FileSource, MessageSource } from './api/types';

export interface CitationOptions {
  sources: readonly MessageSource[] | null | undefined;
  onopen: (source: FileSource) => void;
}

export function linkCitations(root: Node, cited: FileSource[]): void {
  const refs = new Set(cited.map((s) => s.ref as number));
  if (!refs.size || !root.ownerDocument) return;
  const walker = root.ownerDocument.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes: Text[] = [];
  const consider = (text: Text) => {
    if (text.data.includes('[') && !text.parentElement?.closest('code, pre, button.cite, .steps')) nodes.push(text);
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
  const run = () => linkCitations(node, citedSources(current.sources));
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
    if (!cited.length) return;
    for (const r of records) {
      if (r.type === 'characterData') linkCitations(r.target, cited);
      else r.addedNodes.forEach((n) => n.isConnected && linkCitations(n, cited));
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
