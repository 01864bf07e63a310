import { describe, expect, it } from 'vitest';
import { completeSentences, downsample, encodeWav, speakable } from '../src/lib/speech';
import { rms } from '../src/lib/voicemode';

describe('read aloud: sentences as the answer streams', () => {
  it('gives only complete sentences until the answer is done', () => {
    const partial = completeSentences('First one. Second is still', 0, false);
    expect(partial.sentences).toEqual(['First one.']);
    const rest = completeSentences('First one. Second is still going. Third', partial.next, false);
    expect(rest.sentences).toEqual(['Second is still going.']);
    const end = completeSentences('First one. Second is still going. Third', rest.next, true);
    expect(end.sentences).toEqual(['Third']);
  });

  it('reads prose, not Markdown or code', () => {
    expect(speakable('**Bold** and [a link](http://x.test) `x`')).toBe('Bold and a link x');
    const { sentences } = completeSentences('Run this:\n```sh\nrm -rf /\n```\nThen stop.', 0, true);
    expect(sentences.join(' ')).not.toContain('rm -rf');
    expect(sentences).toContain('Then stop.');
  });
});

describe('recording', () => {
  it('downsamples to 16 kHz and writes a 16-bit mono WAV', async () => {
    const tone = new Float32Array(48_000).map((_, i) => Math.sin(i / 10) * 0.5);
    const low = downsample(tone, 48_000);
    expect(low.length).toBe(16_000);
    const wav = new Uint8Array(await encodeWav(low, 16_000).arrayBuffer());
    const view = new DataView(wav.buffer);
    expect(String.fromCharCode(...wav.slice(0, 4))).toBe('RIFF');
    expect(view.getUint32(24, true)).toBe(16_000);
    expect(view.getUint16(34, true)).toBe(16);
    expect(view.getUint32(40, true)).toBe(32_000);
  });

  it('measures loudness for the voice detector', () => {
    expect(rms(new Float32Array(100))).toBe(0);
    expect(rms(new Float32Array(100).fill(0.5))).toBeCloseTo(0.5);
  });
});
