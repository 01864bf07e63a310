// The composer's globe ("Search the web"): whether the server can search (the tools list
// offers `web_search`, or withholds it because no search service is set up) and the
// toggle's state per conversation draft ('new' for a chat not started yet), kept in this
// browser so a reload or switching chats finds it as it was left.
import { toolsApi } from '../tools';

const STORE_KEY = 'parley.websearch';
const KEEP = 100; // conversations remembered (the oldest are forgotten)

function read(): Record<string, boolean> {
  try {
    const raw = JSON.parse(localStorage.getItem(STORE_KEY) || '{}');
    return raw && typeof raw === 'object' ? (raw as Record<string, boolean>) : {};
  } catch {
    return {};
  }
}

class WebSearchToggle {
  /** null until the tools list was read. */
  available = $state<boolean | null>(null);
  private on = $state<Record<string, boolean>>(read());

  async refresh(): Promise<void> {
    try {
      const list = await toolsApi.list();
      this.available = list.items.some((t) => t.name === 'web_search');
    } catch {
      // keep what was known; the composer still sends without the globe
    }
  }

  /** The toggle for a conversation (null: a chat not started yet). */
  isOn(conversationId: string | null): boolean {
    return !!this.on[conversationId ?? 'new'];
  }

  set(conversationId: string | null, value: boolean): void {
    const next = { ...this.on };
    delete next[conversationId ?? 'new'];
    if (value) next[conversationId ?? 'new'] = true;
    const keys = Object.keys(next);
    for (const k of keys.slice(0, Math.max(0, keys.length - KEEP))) delete next[k];
    this.on = next;
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(next));
    } catch {
      // private mode: remembered for this page only
    }
  }

  /** A new chat got its id: its draft's toggle moves with it. */
  started(conversationId: string): void {
    if (!this.on.new) return;
    this.set('new', false);
    this.set(conversationId, true);
  }
}

export const webSearch = new WebSearchToggle();
