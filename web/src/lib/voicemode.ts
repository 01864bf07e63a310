// Voice mode: a hands-free conversation. The microphone stays open; an energy-based
// voice activity detector cuts it into utterances (speech, then 0.8 s of quiet); each
// utterance is transcribed and sent as a normal chat message, and the answer is read
// aloud. Speaking while the answer plays (or is still being written) is barge-in: the
// owner stops playback and generation at once, and the new utterance is heard as
// usual. Push to talk (`hold()` / `release()`) bypasses the detector, for noisy rooms.
import { downsample, encodeWav, TARGET_RATE } from './speech';

export type VoiceState = 'off' | 'starting' | 'listening' | 'hearing' | 'transcribing' | 'error';

export interface VoiceHandlers {
  /** The user started speaking (barge-in: stop what is playing or being written). */
  onSpeechStart: () => void;
  /** A whole utterance, as a 16 kHz WAV. */
  onUtterance: (wav: Blob) => Promise<void>;
  onState: (state: VoiceState) => void;
}

const BLOCK = 2048;
const END_SILENCE_S = 0.8;
const MIN_SPEECH_S = 0.25;
const PREROLL_S = 0.3;
const MAX_UTTERANCE_S = 60;

/** Root-mean-square loudness of a block. */
export function rms(block: Float32Array): number {
  let sum = 0;
  for (const v of block) sum += v * v;
  return Math.sqrt(sum / Math.max(1, block.length));
}

export class VoiceSession {
  private stream: MediaStream | null = null;
  private context: AudioContext | null = null;
  private node: ScriptProcessorNode | null = null;
  private rate = 48_000;
  private noise = 0.004; // running noise floor
  private preroll: Float32Array[] = [];
  private utterance: Float32Array[] = [];
  private voiced = 0; // seconds of speech in the current utterance
  private quiet = 0; // seconds of quiet since the last speech
  private loudRun = 0;
  private held = false;
  private busy = false; // an utterance is being transcribed and sent
  state: VoiceState = 'off';

  constructor(private handlers: VoiceHandlers) {}

  private set(state: VoiceState): void {
    this.state = state;
    this.handlers.onState(state);
  }

  async start(): Promise<void> {
    this.set('starting');
    if (!navigator.mediaDevices?.getUserMedia) throw new DOMException('no getUserMedia', 'NotSupportedError');
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.context = new AudioContext();
    this.rate = this.context.sampleRate;
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = this.context.createScriptProcessor(BLOCK, 1, 1);
    this.node.onaudioprocess = (e) => this.block(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(this.node);
    this.node.connect(this.context.destination);
    this.set('listening');
  }

  private block(block: Float32Array): void {
    const seconds = block.length / this.rate;
    const level = rms(block);
    const threshold = Math.max(0.012, this.noise * 3);
    const loud = level > threshold;
    if (this.state === 'listening' && !this.held) {
      this.preroll.push(block);
      while (this.preroll.length * seconds > PREROLL_S) this.preroll.shift();
      if (!loud) this.noise = this.noise * 0.95 + level * 0.05;
      this.loudRun = loud ? this.loudRun + 1 : 0;
      if (this.loudRun >= 2 && !this.busy) {
        this.utterance = [...this.preroll];
        this.preroll = [];
        this.voiced = this.loudRun * seconds;
        this.quiet = 0;
        this.set('hearing');
        this.handlers.onSpeechStart();
      }
      return;
    }
    if (this.state !== 'hearing') return;
    this.utterance.push(block);
    if (loud) {
      this.voiced += seconds;
      this.quiet = 0;
    } else {
      this.quiet += seconds;
    }
    const total = this.utterance.length * seconds;
    if ((!this.held && this.quiet >= END_SILENCE_S) || total >= MAX_UTTERANCE_S) void this.finish();
  }

  /** Push to talk: start an utterance now, whatever the detector says. */
  hold(): void {
    if (this.state !== 'listening' || this.busy) return;
    this.held = true;
    this.utterance = [...this.preroll];
    this.voiced = MIN_SPEECH_S;
    this.quiet = 0;
    this.set('hearing');
    this.handlers.onSpeechStart();
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.state === 'hearing') void this.finish();
  }

  private async finish(): Promise<void> {
    const chunks = this.utterance;
    this.utterance = [];
    this.loudRun = 0;
    if (this.voiced < MIN_SPEECH_S) {
      this.set('listening'); // a click or a cough
      return;
    }
    this.busy = true;
    this.set('transcribing');
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const all = new Float32Array(total);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    try {
      await this.handlers.onUtterance(encodeWav(downsample(all, this.rate), TARGET_RATE));
    } finally {
      this.busy = false;
      if (this.state !== 'off') this.set('listening');
    }
  }

  stop(): void {
    this.node?.disconnect();
    this.stream?.getTracks().forEach((t) => t.stop());
    void this.context?.close().catch(() => undefined);
    this.node = null;
    this.stream = null;
    this.context = null;
    this.utterance = [];
    this.preroll = [];
    this.set('off');
  }
}
