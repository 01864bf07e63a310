import { conversations as api } from '../api/client';
import type { Conversation } from '../api/types';

class Conversations {
  items = $state<Conversation[]>([]);
  cursor = $state<string | null>(null);
  loading = $state(false);
  done = $state(false);
  error = $state<string | null>(null);
  archived = $state(false);
  private gen = 0;

  async reset(archived = this.archived): Promise<void> {
    this.archived = archived;
    this.items = [];
    this.cursor = null;
    this.done = false;
    this.gen++;
    this.loading = false;
    await this.loadMore();
  }

  async loadMore(): Promise<void> {
    if (this.loading || this.done) return;
    this.loading = true;
    const gen = this.gen;
    try {
      const page = await api.list({ limit: 50, cursor: this.cursor, archived: this.archived });
      if (gen !== this.gen) return;
      const seen = new Set(this.items.map((c) => c.id));
      this.items = [...this.items, ...page.items.filter((c) => !seen.has(c.id))];
      this.cursor = page.next_cursor;
      this.done = !page.next_cursor;
      this.error = null;
    } catch (e) {
      if (gen === this.gen) this.error = e instanceof Error ? e.message : String(e);
    } finally {
      if (gen === this.gen) this.loading = false;
    }
  }

  /** Insert or update; an updated conversation moves to the top (most recent first).
   * Temporary chats are never listed (they are not kept in history). */
  upsert(c: Conversation, moveToTop = false): void {
    if (c.archived !== this.archived || c.temporary) {
      this.remove(c.id);
      return;
    }
    const i = this.items.findIndex((x) => x.id === c.id);
    if (i === -1) this.items = [c, ...this.items];
    else if (moveToTop) this.items = [c, ...this.items.slice(0, i), ...this.items.slice(i + 1)];
    else this.items[i] = c;
  }

  patchLocal(id: string, patch: Partial<Conversation>): void {
    const i = this.items.findIndex((x) => x.id === id);
    if (i !== -1) this.items[i] = { ...this.items[i], ...patch };
  }

  remove(id: string): void {
    this.items = this.items.filter((c) => c.id !== id);
  }

  get(id: string): Conversation | undefined {
    return this.items.find((c) => c.id === id);
  }
}

export const conversations = new Conversations();
