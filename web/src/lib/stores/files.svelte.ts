// Attachments being uploaded from the composer, files per conversation (shown on the
// question they came with), and the citation viewer's state.
import { errorMessage } from '../api/client';
import { TERMINAL, filesApi, uploadFile } from '../api-files';
import type { FileSource, StoredFile, UploadedFile } from '../api/types';

export interface Attachment {
  key: string;
  name: string;
  size: number;
  /** bytes sent, 0..1 */
  sent: number;
  file: UploadedFile | null;
  error: string | null;
}

const POLL_MS = 700;

class FilesStore {
  /** Attachments of the message being written (cleared on send). */
  pending = $state<Attachment[]>([]);
  /** conversation id -> its files (newest first) */
  byConversation = $state<Record<string, StoredFile[]>>({});
  /** The passage shown in the citation viewer. */
  viewing = $state<FileSource | null>(null);
  private seq = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  get uploading(): boolean {
    return this.pending.some((a) => !a.error && !a.file);
  }

  async attach(files: FileList | File[], conversationId: string): Promise<void> {
    for (const file of Array.from(files)) {
      const key = `a${++this.seq}`;
      this.pending = [...this.pending, { key, name: file.name, size: file.size, sent: 0, file: null, error: null }];
      try {
        const stored = await uploadFile(file, { conversation_id: conversationId }, (f) => this.update(key, { sent: f }));
        this.update(key, { sent: 1, file: stored });
      } catch (e) {
        this.update(key, { error: errorMessage(e) });
      }
    }
    this.poll();
  }

  remove(key: string): void {
    const item = this.pending.find((a) => a.key === key);
    this.pending = this.pending.filter((a) => a.key !== key);
    if (item?.file && !item.file.duplicate) void filesApi.remove(item.file.id).catch(() => undefined);
  }

  /** The message was sent: its attachments now belong to it. */
  sent(conversationId: string): void {
    this.pending = [];
    void this.load(conversationId);
  }

  async load(conversationId: string): Promise<void> {
    try {
      const { items } = await filesApi.list({ conversation_id: conversationId });
      this.byConversation = { ...this.byConversation, [conversationId]: items };
    } catch {
      /* shown again on the next load */
    }
  }

  forMessage(conversationId: string | null, messageId: string): StoredFile[] {
    if (!conversationId) return [];
    return (this.byConversation[conversationId] ?? []).filter((f) => f.message_id === messageId);
  }

  open(source: FileSource): void {
    this.viewing = source;
  }

  close(): void {
    this.viewing = null;
  }

  private update(key: string, patch: Partial<Attachment>): void {
    this.pending = this.pending.map((a) => (a.key === key ? { ...a, ...patch } : a));
  }

  /** Refresh the status of attachments still being processed. */
  private poll(): void {
    if (this.timer) return;
    const tick = async () => {
      this.timer = null;
      const waiting = this.pending.filter((a) => a.file && !TERMINAL.has(a.file.status));
      for (const a of waiting) {
        try {
          // The upload's answer said whether it was a duplicate; the status read does not.
          this.update(a.key, { file: { ...a.file!, ...(await filesApi.get(a.file!.id)) } });
        } catch {
          /* keep the last state */
        }
      }
      if (this.pending.some((a) => a.file && !TERMINAL.has(a.file.status))) this.timer = setTimeout(tick, POLL_MS);
    };
    this.timer = setTimeout(tick, POLL_MS);
  }
}

export const files = new FilesStore();
