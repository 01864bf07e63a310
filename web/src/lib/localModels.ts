// Admin → Models: download GGUF models from Hugging Face and choose the one the
// built-in model runs (`/api/admin/local-models`). The page polls the list while a
// download runs; the words for sizes, speed and time left are here so they are tested
// in one place.
import { enc, request } from './api/client';
import type { components } from './api/schema';

type Schemas = components['schemas'];
export type LocalModels = Schemas['LocalModelsOut'];
export type CuratedModel = Schemas['CuratedModelOut'];
export type ModelFile = Schemas['DownloadOut'];

export const localModelsApi = {
  list: () => request<LocalModels>('/api/admin/local-models'),
  download: (repo: string, file: string) =>
    request<ModelFile>('/api/admin/local-models/downloads', { method: 'POST', body: { repo, file } }),
  resume: (file: string) =>
    request<ModelFile>(`/api/admin/local-models/downloads/${enc(file)}/resume`, { method: 'POST' }),
  cancel: (file: string) => request<void>(`/api/admin/local-models/downloads/${enc(file)}`, { method: 'DELETE' }),
  remove: (file: string) => request<void>(`/api/admin/local-models/files/${enc(file)}`, { method: 'DELETE' }),
  use: (file: string | null) =>
    request<{ ref: string }>('/api/admin/local-models/use', { method: 'POST', body: { file } }),
};

/** Bytes in decimal units, as disks and Hugging Face show them. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 'B';
  for (const u of units) {
    value /= 1000;
    unit = u;
    if (value < 1000) break;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${unit}`;
}

/** "1.2 GB of 2.0 GB · 8.3 MB/s · about 2 min left" for a running download. */
export function progressText(f: ModelFile): string {
  const parts = [f.total_bytes ? `${formatBytes(f.done_bytes)} of ${formatBytes(f.total_bytes)}` : formatBytes(f.done_bytes)];
  if (f.status === 'verifying') return `${parts[0]} · checking the checksum…`;
  if (f.rate > 0) {
    parts.push(`${formatBytes(f.rate)}/s`);
    if (f.total_bytes) parts.push(timeLeft((f.total_bytes - f.done_bytes) / f.rate));
  } else if (f.status === 'running') {
    parts.push(f.done_bytes ? 'waiting for the server…' : 'starting…');
  }
  return parts.join(' · ');
}

export function timeLeft(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 60) return 'less than a minute left';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min left`;
  return `about ${(minutes / 60).toFixed(1)} h left`;
}

/** Percent done (0-100), or null when the size is unknown. */
export function percent(f: ModelFile): number | null {
  if (!f.total_bytes) return null;
  return Math.min(100, Math.floor((f.done_bytes / f.total_bytes) * 100));
}

export function isActive(f: ModelFile | undefined): boolean {
  return !!f && (f.status === 'running' || f.status === 'verifying');
}
