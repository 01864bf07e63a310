// What the composer can attach from knowledge (collections and library files), and the
// `#query` the user is typing. Pure functions: the store and components share them.
import type { Collection, StoredFile } from './api/types';

export interface KnowledgeItem {
  kind: 'collection' | 'file';
  id: string;
  name: string;
  /** "3 files" for a collection; "in Field guides" or "Library" for a file. */
  detail: string;
}

export const MAX_SHOWN = 8;

export function collectionItem(c: Pick<Collection, 'id' | 'name' | 'file_count'>): KnowledgeItem {
  return { kind: 'collection', id: c.id, name: c.name, detail: `Collection · ${c.file_count} file${c.file_count === 1 ? '' : 's'}` };
}

export function fileItem(f: Pick<StoredFile, 'id' | 'filename' | 'collection_id'>, collections: readonly Pick<Collection, 'id' | 'name'>[]): KnowledgeItem {
  const home = f.collection_id ? collections.find((c) => c.id === f.collection_id)?.name : null;
  return { kind: 'file', id: f.id, name: f.filename, detail: home ? `File in ${home}` : 'File in your library' };
}

export function sameItem(a: Pick<KnowledgeItem, 'kind' | 'id'>, b: Pick<KnowledgeItem, 'kind' | 'id'>): boolean {
  return a.kind === b.kind && a.id === b.id;
}

/** Options whose name holds every word of the query (names starting with it first). */
export function matchKnowledge(options: readonly KnowledgeItem[], query: string, exclude: readonly KnowledgeItem[] = []): KnowledgeItem[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const q = words.join(' ');
  const found = options.filter((o) => !exclude.some((e) => sameItem(e, o)) && words.every((w) => o.name.toLowerCase().includes(w)));
  const rank = (o: KnowledgeItem) => (q && o.name.toLowerCase().startsWith(q) ? 0 : 1) + (o.kind === 'collection' ? 0 : 0.5);
  return found.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name)).slice(0, MAX_SHOWN);
}

/** The `#query` just before the caret (null when the caret is not in one). */
export function hashQuery(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const m = /(^|\s)#([^\s#]{0,60})$/.exec(before);
  if (!m) return null;
  return { start: before.length - m[2].length - 1, query: m[2] };
}

/** The text with the `#query` at `start` (up to the caret) removed. */
export function removeHashQuery(text: string, start: number, caret: number): { text: string; caret: number } {
  let head = text.slice(0, start);
  let tail = text.slice(caret);
  if (head.endsWith(' ') && (tail.startsWith(' ') || !tail)) head = head.slice(0, -1);
  if (!head && tail.startsWith(' ')) tail = tail.slice(1);
  return { text: head + tail, caret: head.length };
}
