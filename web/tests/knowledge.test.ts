import { describe, expect, it } from 'vitest';
import { collectionItem, fileItem, hashQuery, matchKnowledge, removeHashQuery } from '../src/lib/knowledge';

const collections = [
  { id: 'c1', name: 'Harbour manuals', file_count: 1 },
  { id: 'c2', name: 'Recipes', file_count: 0 },
];
const options = [
  ...collections.map(collectionItem),
  fileItem({ id: 'f1', filename: 'tides.md', collection_id: null }, collections),
  fileItem({ id: 'f2', filename: 'harbour-tides.pdf', collection_id: 'c1' }, collections),
];

describe('knowledge options', () => {
  it('describes collections and files by where they live', () => {
    expect(options.map((o) => o.detail)).toEqual(['Collection · 1 file', 'Collection · 0 files', 'File in your library', 'File in Harbour manuals']);
  });

  it('matches every word, names starting with the query first, attached ones left out', () => {
    expect(matchKnowledge(options, 'tides').map((o) => o.id)).toEqual(['f1', 'f2']);
    expect(matchKnowledge(options, 'HARB tid').map((o) => o.id)).toEqual(['f2']);
    expect(matchKnowledge(options, 'harb').map((o) => o.id)).toEqual(['c1', 'f2']);
    expect(matchKnowledge(options, '', [options[0]]).map((o) => o.id)).not.toContain('c1');
    expect(matchKnowledge(options, 'nothing')).toEqual([]);
  });
});

describe('#query in the message', () => {
  it('is found only right before the caret, after a space or at the start', () => {
    expect(hashQuery('#tid', 4)).toEqual({ start: 0, query: 'tid' });
    expect(hashQuery('How high? #ti', 13)).toEqual({ start: 10, query: 'ti' });
    expect(hashQuery('How high? #', 11)).toEqual({ start: 10, query: '' });
    expect(hashQuery('issue#12', 8)).toBeNull();
    expect(hashQuery('#tid done', 9)).toBeNull();
  });

  it('is removed with the space before it', () => {
    expect(removeHashQuery('How high? #tid', 10, 14)).toEqual({ text: 'How high?', caret: 9 });
    expect(removeHashQuery('#tid and more', 0, 4)).toEqual({ text: 'and more', caret: 0 });
    expect(removeHashQuery('a #x b', 2, 4)).toEqual({ text: 'a b', caret: 1 });
  });
});
