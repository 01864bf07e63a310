// Speech in the web app: what the server can do (GET /api/speech), the "read answers
// aloud" switch (kept in this browser), and the one answer being read at a time.
import { speechApi, ReadAloud } from '../speech';
import type { SpeechStatus } from '../api/types';
import { chat } from './chat.svelte';

const AUTO_KEY = 'parley.readAloud';

class SpeechStore {
  status = $state<SpeechStatus | null>(null);
  /** Read every new answer aloud as it streams. */
  auto = $state(typeof localStorage !== 'undefined' && localStorage.getItem(AUTO_KEY) === '1');
  /** Voice mode is on: every answer is read aloud, whatever `auto` says. */
  voiceMode = $state(false);
  /** The answer being read (its id), for the speaker buttons. */
  speakingId = $state<string | null>(null);
  error = $state<string | null>(null);
  private reader: ReadAloud | null = null;
  private readerId = '';
  private buffer = '';
  private loading: Promise<void> | null = null;

  load(): Promise<void> {
    this.loading ??= speechApi
      .status()
      .then((s) => {
        this.status = s;
      })
      .catch(() => {
        this.status = null;
      });
    return this.loading;
  }

  get voice(): string {
    return this.status?.voices[0] ?? 'joe';
  }

  setAuto(on: boolean): void {
    this.auto = on;
    localStorage.setItem(AUTO_KEY, on ? '1' : '0');
    if (!on) this.stop();
  }

  private begin(id: string): ReadAloud {
    this.stop();
    const reader = new ReadAloud(this.voice);
    reader.onstate = (speaking) => {
      if (this.reader === reader) this.speakingId = speaking ? id : null;
    };
    reader.onerror = (message) => {
      this.error = message;
    };
    this.reader = reader;
    this.readerId = id;
    this.buffer = '';
    this.error = null;
    return reader;
  }

  /** The live answer's text as it streams (wired to the chat store). */
  onText(id: string, delta: string, done: boolean): void {
    if (!(this.auto || this.voiceMode) || !this.status?.speech) return;
    if (!this.reader || this.readerId !== id) {
      if (done && !delta) return;
      this.begin(id);
    }
    this.buffer += delta;
    this.reader!.feed(this.buffer, done);
  }

  /** Read a finished answer from the start. */
  read(id: string, text: string): void {
    if (this.speakingId === id) {
      this.stop();
      return;
    }
    this.begin(id).feed(text, true);
    this.speakingId = id;
  }

  stop(): void {
    this.reader?.stop();
    this.reader = null;
    this.speakingId = null;
  }
}

export const speech = new SpeechStore();
chat.textListener = (id, delta, done) => speech.onText(id, delta, done);
