import { describe, expect, it } from 'vitest';
import { formatBytes, isActive, percent, progressText, timeLeft, type ModelFile } from '../src/lib/localModels';

function file(over: Partial<ModelFile> = {}): ModelFile {
  return {
    file: 'm.gguf',
    repo: 'acme/m',
    revision: 'main',
    status: 'running',
    done_bytes: 500_000_000,
    total_bytes: 2_000_000_000,
    rate: 10_000_000,
    sha256: null,
    verified: false,
    error: null,
    in_use: false,
    ...over,
  };
}

describe('model download words', () => {
  it('formats sizes in decimal units', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_117_000_000)).toBe('1.1 GB');
    expect(formatBytes(491_400_000)).toBe('491 MB');
  });

  it('says how far, how fast and how long', () => {
    expect(progressText(file())).toBe('500 MB of 2.0 GB · 10.0 MB/s · about 3 min left');
    expect(progressText(file({ rate: 0 }))).toBe('500 MB of 2.0 GB · waiting for the server…');
    expect(progressText(file({ rate: 0, done_bytes: 0 }))).toBe('0 B of 2.0 GB · starting…');
    expect(progressText(file({ status: 'verifying' }))).toBe('500 MB of 2.0 GB · checking the checksum…');
    expect(timeLeft(30)).toBe('less than a minute left');
    expect(percent(file())).toBe(25);
    expect(percent(file({ total_bytes: null }))).toBeNull();
  });

  it('knows which downloads are still moving', () => {
    expect(isActive(file())).toBe(true);
    expect(isActive(file({ status: 'interrupted' }))).toBe(false);
    expect(isActive(undefined)).toBe(false);
  });
});
