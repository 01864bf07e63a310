import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import AttachmentChips from '../src/components/files/AttachmentChips.svelte';
import FileSources from '../src/components/files/FileSources.svelte';
import { citedSources, formatBytes, sourceLabel, splitCitations, statusLabel } from '../src/lib/api-files';
import type { FileSource, MessageSource } from '../src/lib/api/types';
import { linkCitations } from '../src/lib/citations';
import { files } from '../src/lib/stores/files.svelte';

function source(ref: number | null, extra: Partial<FileSource> = {}): FileSource {
  return {
    kind: 'file',
    title: 'report.pdf',
    ref,
    file_id: 'f1',
    filename: 'report.pdf',
    page: 3,
    section: 'Results',
    chunk_id: ref == null ? null : 100 + ref,
    snippet: 'snippet',
    mode: ref == null ? 'pending' : 'retrieved',
    ...extra,
  };
}

afterEach(() => {
  cleanup();
  files.pending = [];
  files.viewing = null;
});

describe('file helpers', () => {
  it('splits only known citation numbers', () => {
    expect(splitCitations('See [1] and [2], not [9].', new Set([1, 2]))).toEqual(['See ', 1, ' and ', 2, ', not [9].']);
    expect(splitCitations('no refs', new Set([1]))).toEqual(['no refs']);
  });

  it('labels sources and statuses', () => {
    expect(sourceLabel(source(1))).toBe('report.pdf, p. 3 — Results');
    expect(sourceLabel({ filename: 'a.md', page: null, section: null })).toBe('a.md');
    const base = { progress: 0.4, error: null, pages: 10, pages_done: 2 };
    expect(statusLabel({ ...base, status: 'parsing' })).toBe('Reading page 2/10');
    expect(statusLabel({ ...base, status: 'embedding' })).toBe('Indexing 40%');
    expect(statusLabel({ ...base, status: 'failed', error: 'no text layer' })).toBe('Failed: no text layer');
    expect(formatBytes(2048)).toBe('2.0 KB');
  });

  it('keeps cited file sources in number order and ignores web sources', () => {
    const list: MessageSource[] = [source(2), { kind: 'web', title: 'x', url: 'https://x.example/', snippet: '' }, source(null), source(1)];
    expect(citedSources(list).map((s) => s.ref)).toEqual([1, 2]);
  });

  it('turns [n] into buttons without touching code or unknown numbers', () => {
    const root = document.createElement('div');
    root.innerHTML = '<p>Water boils at 100 C [1]. Also [7].</p><pre><code>a[1]</code></pre>';
    linkCitations(root, [source(1)]);
    const buttons = root.querySelectorAll('button.cite');
    expect(buttons).toHaveLength(1);
    expect(buttons[0].textContent).toBe('[1]');
    expect(buttons[0].getAttribute('title')).toBe('report.pdf, page 3');
    expect(root.querySelector('code')!.textContent).toBe('a[1]');
    expect(root.textContent).toContain('Also [7].');
  });

  it('does not turn a hostile filename into markup', () => {
    const root = document.createElement('div');
    root.textContent = 'see [1]';
    linkCitations(root, [source(1, { filename: '<img src=x onerror=alert(1)>' })]);
    expect(root.querySelector('img')).toBeNull();
  });
});

describe('file components', () => {
  it('lists cited passages and opens the viewer on click', async () => {
    const { getAllByTestId, getByText } = render(FileSources, {
      sources: [source(1), source(null, { file_id: 'f2', filename: 'late.pdf', detail: 'indexing, 40% done' })],
    });
    const items = getAllByTestId('file-source');
    expect(items).toHaveLength(1);
    expect(items[0].textContent).toContain('[1] report.pdf, p. 3 — Results');
    expect(getByText(/late.pdf: not ready yet/)).toBeTruthy();
    await fireEvent.click(items[0]);
    expect(files.viewing?.chunk_id).toBe(101);
  });

  it('shows upload progress, processing status and failures as chips', () => {
    files.pending = [
      { key: 'a', name: 'a.pdf', size: 10, sent: 0.5, file: null, error: null },
      {
        key: 'b', name: 'b.txt', size: 10, sent: 1, error: null,
        file: { id: 'x', filename: 'b.txt', media_type: 'text/plain', kind: 'text', size_bytes: 10, status: 'embedding', progress: 0.25,
          error_code: null, error: null, pages: null, pages_done: 0, chunk_count: 4, embedded_count: 1, conversation_id: 'c',
          collection_id: null, message_id: null, created_at: '', updated_at: '', sha256: '', tokens: 0, duplicate: false },
      },
      { key: 'c', name: 'c.pdf', size: 10, sent: 1, file: null, error: "'c.pdf' is password-protected." },
    ];
    const { getAllByTestId } = render(AttachmentChips);
    const chips = getAllByTestId('attachment');
    expect(chips.map((c) => c.dataset.status)).toEqual(['uploading', 'embedding', 'failed']);
    expect(chips[0].textContent).toContain('Uploading 50%');
    expect(chips[1].textContent).toContain('Indexing 25%');
    expect(chips[2].textContent).toContain('password-protected');
  });
});
