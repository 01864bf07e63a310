import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import YourData from '../src/components/settings/YourData.svelte';
import { ApiError } from '../src/lib/api/client';
import type { ImportReport } from '../src/lib/api/types';
import { conversations } from '../src/lib/stores/conversations.svelte';
import { exportFilename, importErrorMessage, importFileProblem, importSummary, isZip } from '../src/lib/userdata';
import { conversation } from './fixtures';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  conversations.items = [];
});

function report(over: Partial<ImportReport> = {}): ImportReport {
  return {
    conversations: 2,
    messages: 6,
    settings: false,
    features: { memory: { memories: 3 }, knowledge: { collections: 1, files: 2, files_skipped: 0 } },
    ignored: [],
    ...over,
  };
}

/** An XMLHttpRequest the test answers by hand (uploads report progress through it). */
class FakeXHR {
  static last: FakeXHR | null = null;
  method = '';
  url = '';
  headers: Record<string, string> = {};
  body: unknown = null;
  withCredentials = false;
  status = 0;
  statusText = '';
  responseText = '';
  upload: { onprogress: ((e: Partial<ProgressEvent>) => void) | null; onload: (() => void) | null } = {
    onprogress: null,
    onload: null,
  };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(key: string, value: string) {
    this.headers[key.toLowerCase()] = value;
  }
  send(body: unknown) {
    this.body = body;
    FakeXHR.last = this;
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total });
  }
  respond(status: number, body: unknown) {
    this.upload.onload?.();
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

function pick(input: HTMLElement, file: File) {
  return fireEvent.change(input, { target: { files: [file] } });
}

describe('import and export helpers', () => {
  it('names the download by date and kind', () => {
    const day = new Date('2026-05-01T12:00:00Z');
    expect(exportFilename(false, day)).toBe('parley-export-2026-05-01.json');
    expect(exportFilename(true, day)).toBe('parley-export-2026-05-01.zip');
  });

  it('refuses files that cannot be an export before sending them', () => {
    const ok = { name: 'parley-export.JSON', type: '', size: 10 };
    expect(importFileProblem(ok)).toBeNull();
    expect(importFileProblem({ name: 'notes.txt', type: 'text/plain', size: 10 })).toContain('is not a Parley export');
    expect(importFileProblem({ ...ok, size: 0 })).toContain('is empty');
    expect(importFileProblem({ ...ok, size: 2 * 1024 ** 3 })).toContain('too large');
    expect(isZip({ name: 'parley-export.zip', type: '' })).toBe(true);
    expect(isZip({ name: 'export', type: 'application/x-zip-compressed' })).toBe(true);
    expect(isZip({ name: 'parley-export.json', type: 'application/json' })).toBe(false);
  });

  it('counts what was added, with notes for skipped files, settings and features left out', () => {
    const full = importSummary(report(), true);
    expect(full.added).toEqual(['2 conversations (6 messages)', '3 memories', '1 collection', '2 files']);
    expect(full.headline).toMatch(/^Import complete/);
    expect(full.notes.join(' ')).toContain('indexed again');

    const json = importSummary(
      report({
        conversations: 1,
        messages: 1,
        settings: true,
        features: { knowledge: { collections: 0, files: 0, files_skipped: 2 } },
        ignored: ['memory'],
      }),
      false,
    );
    expect(json.added).toEqual(['1 conversation (1 message)']);
    expect(json.notes[0]).toContain('2 files skipped: a .json export does not contain the files');
    expect(json.notes).toContain('Your custom instructions, time zone and preferences now come from the export (where it had any).');
    expect(json.notes).toContain('Not imported: memories (turned off on this server).');

    const zipSkip = importSummary(report({ features: { knowledge: { collections: 0, files: 0, files_skipped: 1 } } }), true);
    expect(zipSkip.notes[0]).toContain('1 file could not be imported');

    const empty = importSummary(report({ conversations: 0, messages: 0, features: {} }), false);
    expect(empty.headline).toContain('nothing to import');
    expect(empty.added).toEqual(['0 conversations (0 messages)']);
  });

  it('explains failures with the problem detail and what to do', () => {
    const invalid = new ApiError(422, { detail: "This is not a Parley export (no 'format' field).", code: 'invalid_import' });
    expect(importErrorMessage(invalid)).toBe(
      "This is not a Parley export (no 'format' field). Nothing was added. Choose the .json or .zip file that “Export my data” or “Export with files” downloaded.",
    );
    const big = new ApiError(413, { detail: 'The import is larger than the 1,073,741,824-byte limit.', code: 'body_too_large' });
    expect(importErrorMessage(big)).toContain('too large to import (the limit is 1 GB)');
    expect(importErrorMessage(new ApiError(0, { detail: 'lost' }))).toContain('importing the same file twice makes copies');
    expect(importErrorMessage(new ApiError(401, { detail: 'Sign in.' }))).toContain('Sign in again');
    expect(importErrorMessage(new ApiError(500, { detail: 'Internal error' }))).toBe(
      'The server could not import the file: Internal error. Try again later.',
    );
  });
});

describe('YourData', () => {
  it('uploads the picked file with progress, shows what was imported and refreshes the conversation list', async () => {
    vi.stubGlobal('XMLHttpRequest', FakeXHR);
    const fetch = vi.fn(async (url: string) => {
      if (url.startsWith('/api/conversations'))
        return Response.json({ items: [conversation('c9', { title: 'Imported chat' })], next_cursor: null });
      return Response.json({}, { status: 404 });
    });
    vi.stubGlobal('fetch', fetch);
    const { getByTestId, queryByTestId } = render(YourData);
    const file = new File(['{"format": "parley-export-2"}'], 'parley-export.zip', { type: 'application/zip' });
    await pick(getByTestId('import-file'), file);

    const xhr = FakeXHR.last!;
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/me/import');
    expect(xhr.headers['content-type']).toBe('application/zip');
    expect(xhr.body).toBe(file);
    await waitFor(() => expect(getByTestId('import-progress').textContent).toContain('Uploading parley-export.zip…'));
    expect(getByTestId('import-progress').textContent).not.toContain('%');
    expect((getByTestId('import-data') as HTMLButtonElement).disabled).toBe(true);

    xhr.progress(40, 100);
    await waitFor(() => expect(getByTestId('import-progress').textContent).toContain('40%'));
    xhr.upload.onload?.();
    await waitFor(() => expect(getByTestId('import-progress').textContent).toContain('Importing parley-export.zip'));

    xhr.respond(200, report());
    await waitFor(() => expect(getByTestId('import-result').textContent).toContain('2 conversations (6 messages)'));
    const result = getByTestId('import-result').textContent ?? '';
    expect(result).toContain('3 memories');
    expect(result).toContain('1 collection');
    expect(result).toContain('2 files');
    expect(queryByTestId('import-progress')).toBeNull();
    expect((getByTestId('import-data') as HTMLButtonElement).disabled).toBe(false);
    await waitFor(() => expect(conversations.items.map((c) => c.id)).toEqual(['c9']));
    expect(fetch.mock.calls.some(([url]) => String(url).startsWith('/api/conversations'))).toBe(true);
  });

  it("shows the server's reason when the file is refused", async () => {
    vi.stubGlobal('XMLHttpRequest', FakeXHR);
    const { getByTestId, queryByTestId } = render(YourData);
    await pick(getByTestId('import-file'), new File(['{}'], 'other.json', { type: 'application/json' }));
    FakeXHR.last!.respond(422, {
      type: 'about:blank',
      title: 'Unprocessable Content',
      status: 422,
      detail: "This is not a Parley export (no 'format' field).",
      code: 'invalid_import',
    });
    await waitFor(() => expect(getByTestId('import-error').textContent).toContain('Could not import other.json'));
    expect(getByTestId('import-error').textContent).toContain("This is not a Parley export (no 'format' field).");
    expect(getByTestId('import-error').getAttribute('role')).toBe('alert');
    expect(queryByTestId('import-result')).toBeNull();
  });

  it('refuses a file that is not an export without sending it', async () => {
    FakeXHR.last = null;
    vi.stubGlobal('XMLHttpRequest', FakeXHR);
    const { getByTestId } = render(YourData);
    await pick(getByTestId('import-file'), new File(['hello'], 'notes.txt', { type: 'text/plain' }));
    await waitFor(() => expect(getByTestId('import-error').textContent).toContain('“notes.txt” is not a Parley export'));
    expect(FakeXHR.last).toBeNull();
  });

  it('offers both downloads', () => {
    const { getByTestId } = render(YourData);
    expect(getByTestId('export-data').textContent?.trim()).toBe('Export my data');
    expect(getByTestId('export-files').textContent?.trim()).toBe('Export with files');
  });
});
