// Speech in the browser: recording the microphone for dictation, and reading answers
// aloud sentence by sentence while they stream.
//
// The recorder captures raw samples with the Web Audio API and sends a 16 kHz WAV:
// the server reads WAV without any decoder (MediaRecorder's WebM/Opus would need
// ffmpeg on the server). Read aloud asks the server for one sentence at a time
// (POST /api/speech/speech) as soon as the sentence is complete, fetching the next
// while the current one plays, so audio starts before the answer is finished.
import { ApiError, buildHeaders, problemOf, request } from './api/client';
import type { SpeechStatus, SpeechTranscript } from './api/types';

export const TARGET_RATE = 16_000;

export const speechApi = {
  status: () => request<SpeechStatus>('/api/speech'),
  transcribe: async (wav: Blob): Promise<SpeechTranscript> => {
    const form = new FormData();
    form.append('file', wav, 'dictation.wav');
    const res = await fetch('/api/speech/transcriptions', {
      method: 'POST',
      credentials: 'same-origin',
      headers: buildHeaders('POST', false),
      body: form,
    });
    if (!res.ok) throw new ApiError(res.status, problemOf(res.status, res.statusText, await res.text()));
    return (await res.json()) as SpeechTranscript;
  },
  speak: async (text: string, voice: string, signal?: AbortSignal): Promise<ArrayBuffer> => {
    const res = await request<Response>('/api/speech/speech', { method: 'POST', body: { text, voice }, raw: true, signal });
    return res.arrayBuffer();
  },
};

/** A microphone failure in words a person can act on. */
export function microphoneError(e: unknown): string {
  const name = e instanceof DOMException ? e.name : e instanceof Error ? e.name : '';
  if (typeof window !== 'undefined' && !window.isSecureContext)
    return 'The microphone only works over HTTPS (or on localhost). Open Parley at an https:// address.';
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return 'Microphone access was refused. Allow the microphone for this site in the browser’s address bar, then try again.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone was found. Connect one and try again.';
  if (name === 'NotReadableError') return 'The microphone is in use by another program, or the system blocked it.';
  if (typeof navigator !== 'undefined' && !navigator.mediaDevices?.getUserMedia) return 'This browser cannot record audio.';
  return e instanceof Error && e.message ? `The microphone failed: ${e.message}` : 'The microphone failed.';
}

/** Mono float samples at `rate` -> `target` (linear interpolation: speech needs < 4 kHz). */
export function downsample(samples: Float32Array, rate: number, target = TARGET_RATE): Float32Array {
  if (rate === target) return samples;
  const count = Math.max(1, Math.round((samples.length * target) / rate));
  const out = new Float32Array(count);
  const step = (samples.length - 1) / Math.max(1, count - 1);
  for (let i = 0; i < count; i++) {
    const pos = i * step;
    const left = Math.floor(pos);
    const right = Math.min(samples.length - 1, left + 1);
    out[i] = samples[left] + (samples[right] - samples[left]) * (pos - left);
  }
  return out;
}

/** 16-bit mono PCM WAV. */
export function encodeWav(samples: Float32Array, rate: number): Blob {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset: number, s: string) => {
    for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i));
  };
  text(0, 'RIFF');
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, 'data');
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buffer], { type: 'audio/wav' });
}

/** Records the microphone until `stop()`, which gives the recording as a 16 kHz WAV. */
export class Recorder {
  private stream: MediaStream | null = null;
  private context: AudioContext | null = null;
  private node: ScriptProcessorNode | null = null;
  private chunks: Float32Array[] = [];
  private rate = 48_000;
  /** The loudness of the last block (0..1), for a level meter. */
  level = 0;

  async start(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) throw new DOMException('no getUserMedia', 'NotSupportedError');
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
    this.context = new AudioContext();
    this.rate = this.context.sampleRate;
    const source = this.context.createMediaStreamSource(this.stream);
    // ScriptProcessorNode: deprecated but everywhere, and needs no worklet file.
    this.node = this.context.createScriptProcessor(4096, 1, 1);
    this.node.onaudioprocess = (e) => {
      const block = new Float32Array(e.inputBuffer.getChannelData(0));
      this.chunks.push(block);
      let peak = 0;
      for (const v of block) peak = Math.max(peak, Math.abs(v));
      this.level = peak;
    };
    source.connect(this.node);
    this.node.connect(this.context.destination);
  }

  get seconds(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0) / this.rate;
  }

  async stop(): Promise<Blob> {
    this.node?.disconnect();
    this.stream?.getTracks().forEach((t) => t.stop());
    await this.context?.close().catch(() => undefined);
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const all = new Float32Array(total);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    this.chunks = [];
    return encodeWav(downsample(all, this.rate), TARGET_RATE);
  }

  cancel(): void {
    this.node?.disconnect();
    this.stream?.getTracks().forEach((t) => t.stop());
    void this.context?.close().catch(() => undefined);
    this.chunks = [];
  }
}

const SENTENCE_END = /[.!?…](?:["')\]]*)\s+|\n+/g;

/** Strip Markdown marks and code blocks: what is read is the prose. */
export function speakable(text: string): string {
  return text
    .replace(/```[\s\S]*?(```|$)/g, ' ')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[*_`#>|]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Code blocks (closed, or still open while streaming) blanked out, same length, so
 * positions in the text stay valid and code is never read aloud. */
function withoutCode(text: string): string {
  return text.replace(/```[\s\S]*?(```|$)/g, (block) => ' '.repeat(block.length));
}

/** Complete sentences of `text` after `from` characters, and where the next one starts. */
export function completeSentences(raw: string, from: number, done: boolean): { sentences: string[]; next: number } {
  const text = withoutCode(raw);
  const sentences: string[] = [];
  let start = from;
  SENTENCE_END.lastIndex = from;
  let m: RegExpExecArray | null;
  while ((m = SENTENCE_END.exec(text))) {
    const end = m.index + m[0].length;
    const s = speakable(text.slice(start, end));
    if (/[\p{L}\p{N}]/u.test(s)) sentences.push(s);
    start = end;
  }
  if (done) {
    const rest = speakable(text.slice(start));
    if (/[\p{L}\p{N}]/u.test(rest)) sentences.push(rest);
    start = text.length;
  }
  return { sentences, next: start };
}

/** Reads one answer aloud as its text grows: `feed(fullText, done)` on every change. */
export class ReadAloud {
  private consumed = 0;
  private pending: Promise<AudioBuffer | null>[] = [];
  private playing = false;
  private context: AudioContext | null = null;
  private current: AudioBufferSourceNode | null = null;
  private abort = new AbortController();
  private stopped = false;
  /** Sentences whose audio has started playing (for tests and the UI). */
  started = 0;
  onstate: ((speaking: boolean) => void) | null = null;
  onerror: ((message: string) => void) | null = null;

  constructor(private voice = 'joe') {}

  feed(text: string, done: boolean): void {
    if (this.stopped) return;
    const { sentences, next } = completeSentences(text, this.consumed, done);
    this.consumed = next;
    for (const s of sentences) this.pending.push(this.fetchAudio(s));
    if (!this.playing && this.pending.length) void this.play();
  }

  private async fetchAudio(sentence: string): Promise<AudioBuffer | null> {
    try {
      const bytes = await speechApi.speak(sentence, this.voice, this.abort.signal);
      this.context ??= new AudioContext();
      return await this.context.decodeAudioData(bytes);
    } catch (e) {
      if (!this.stopped) this.onerror?.(e instanceof ApiError ? e.message : 'Read aloud failed.');
      return null;
    }
  }

  private async play(): Promise<void> {
    this.playing = true;
    this.onstate?.(true);
    while (this.pending.length && !this.stopped) {
      const buffer = await this.pending.shift()!;
      if (!buffer || this.stopped || !this.context) continue;
      await new Promise<void>((resolve) => {
        const source = this.context!.createBufferSource();
        source.buffer = buffer;
        source.connect(this.context!.destination);
        source.onended = () => resolve();
        this.current = source;
        this.started++;
        document.dispatchEvent(new CustomEvent('parley:speech-audio', { detail: { sentence: this.started } }));
        source.start();
      });
    }
    this.playing = false;
    this.onstate?.(false);
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    this.pending = [];
    try {
      this.current?.stop();
    } catch {
      /* not started */
    }
    void this.context?.close().catch(() => undefined);
    this.playing = false;
    this.onstate?.(false);
  }
}
