import { describe, expect, it } from 'vitest';
import type { FileSource } from '../src/lib/api/types';
import { citations } from '../src/lib/citations';

const cited: FileSource = {
  kind: 'file', title: 'a.pdf', ref: 1, file_id: 'f', filename: 'a.pdf', page: 1, section: null,
  chunk_id: 1, snippet: 's', mode: 'retrieved',
};

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('citations action while streaming', () => {
  it('links citations in newly added blocks and leaves the old ones untouched', async () => {
    const root = document.createElement('div');
    document.body.append(root);
    root.innerHTML = '<p>old [1]</p>';
    const action = citations(root, { sources: [cited], onopen: () => undefined });
    const oldButton = root.querySelector('button.cite');
    expect(oldButton).not.toBeNull();

    const p = document.createElement('p');
    p.textContent = 'new [1]';
    root.append(p);
    await settle();
    expect(p.querySelector('button.cite')?.textContent).toBe('[1]');
    expect(root.querySelector('button.cite')).toBe(oldButton); // not rebuilt
    expect(root.querySelectorAll('button.cite')).toHaveLength(2);

    root.querySelector('p')!.append(document.createTextNode(' more [1]'));
    await settle();
    expect(root.querySelectorAll('button.cite')).toHaveLength(3);
    action.destroy();
    root.remove();
  });
});
