// Your data: what the Settings page says about an export and an import
// (`GET /api/me/export`, `POST /api/me/import`; README, "Your data").
import { ApiError, errorMessage } from './api/client';
import type { ImportReport } from './api/types';
import { formatBytes } from './api-files';

/** The server's upload limit for an import (`parley.userdata.archive.IMPORT_MAX_BYTES`):
 * checked here too so a huge file is refused before it is sent. */
export const IMPORT_MAX_BYTES = 1024 * 1024 * 1024;

/** What the file picker offers. */
export const IMPORT_ACCEPT = '.json,.zip,application/json,application/zip';

const CHOOSE = 'Choose the .json or .zip file that “Export my data” or “Export with files” downloaded.';

/** The download's name: `parley-export-2026-05-01.json` (or `.zip` with files). */
export function exportFilename(files: boolean, now: Date = new Date()): string {
  return `parley-export-${now.toISOString().slice(0, 10)}.${files ? 'zip' : 'json'}`;
}

/** Whether an import file is the ZIP form (else the JSON), by its name or type. */
export function isZip(file: Pick<File, 'name' | 'type'>): boolean {
  return /\.zip$/i.test(file.name) || /zip/i.test(file.type);
}

/** Why a picked file cannot be an export, before it is sent; null when it may be one. */
export function importFileProblem(file: Pick<File, 'name' | 'type' | 'size'>): string | null {
  if (!/\.(json|zip)$/i.test(file.name)) return `“${file.name}” is not a Parley export. ${CHOOSE}`;
  if (file.size === 0) return `“${file.name}” is empty. ${CHOOSE}`;
  if (file.size > IMPORT_MAX_BYTES)
    return `“${file.name}” is too large to import (${formatBytes(file.size)}; the limit is 1 GB).`;
  return null;
}

function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** An import's failure in words the user can act on (the problem's `detail` included). */
export function importErrorMessage(err: unknown): string {
  if (!(err instanceof ApiError)) return errorMessage(err);
  if (err.status === 0)
    return 'The connection to the server was lost during the import. Check your conversations before trying again: importing the same file twice makes copies.';
  if (err.status === 413 || err.code === 'body_too_large')
    return 'This file is too large to import (the limit is 1 GB). Nothing was added.';
  if (err.code === 'invalid_import') return `${sentence(err.detail)} Nothing was added. ${CHOOSE}`;
  if (err.status === 401) return 'Your session has expired. Sign in again, then import the file.';
  if (err.status >= 500) return `The server could not import the file: ${sentence(err.detail)} Try again later.`;
  return sentence(err.detail);
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Names of the parts of an export that belong to a feature (for `ignored`). */
const FEATURE_PARTS: Record<string, string> = {
  memory: 'memories',
  knowledge: 'files and collections',
};

export interface ImportSummary {
  /** One line: what happened. */
  headline: string;
  /** What was added, one entry per kind ("2 conversations (6 messages)", "3 memories"...);
   * kinds with none added are left out, but for conversations. */
  added: string[];
  /** Anything the user should know: skipped files, restored settings, parts left out. */
  notes: string[];
  conversations: number;
}

/** The result of an import as the Settings page shows it. `zip`: the file was the ZIP form. */
export function importSummary(report: ImportReport, zip: boolean): ImportSummary {
  const memory = report.features.memory;
  const knowledge = report.features.knowledge;
  const added = [`${count(report.conversations, 'conversation')} (${count(report.messages, 'message')})`];
  // Kinds the export had none of are left out (the conversations are always counted).
  if (memory?.memories) added.push(count(memory.memories, 'memory', 'memories'));
  if (knowledge?.collections) added.push(count(knowledge.collections, 'collection'));
  if (knowledge?.files) added.push(count(knowledge.files, 'file'));
  const total =
    report.conversations + (memory?.memories ?? 0) + (knowledge?.collections ?? 0) + (knowledge?.files ?? 0);

  const notes: string[] = [];
  const skipped = knowledge?.files_skipped ?? 0;
  if (skipped > 0) {
    const them = skipped === 1 ? 'it' : 'them';
    notes.push(
      zip
        ? `${count(skipped, 'file')} could not be imported: this server refused ${them} (its file type or size limits), or the archive did not contain ${skipped === 1 ? 'its' : 'their'} contents.`
        : `${count(skipped, 'file')} skipped: a .json export does not contain the files themselves. To bring ${them} along, use “Export with files” on the old account and import the .zip.`,
    );
  }
  if ((knowledge?.files ?? 0) > 0) notes.push('Imported files are indexed again in the background; search finds them in a few minutes.');
  if (report.settings) notes.push('Your custom instructions, time zone and preferences now come from the export (where it had any).');
  if (report.ignored.length > 0) {
    const parts = report.ignored.map((name) => FEATURE_PARTS[name] ?? name).join(', ');
    notes.push(`Not imported: ${parts} (turned off on this server).`);
  }
  const headline =
    total === 0 && !report.settings
      ? 'The file was read, but it had nothing to import.'
      : 'Import complete. Everything was added next to what you already had.';
  return { headline, added, notes, conversations: report.conversations };
}
