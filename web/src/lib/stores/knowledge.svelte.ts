// Collections and library files the open chat draws on (chips by the composer), the
// options the paper clip's "Add from knowledge" and `#` offer, and a new chat's draft:
// picks made before the conversation exists are attached when it is created.
import { errorMessage } from '../api/client';
import { filesApi } from '../api-files';
import { collectionItem, fileItem, sameItem, type KnowledgeItem } from '../knowledge';
import { toasts } from './toasts.svelte';

class KnowledgeStore {
  /** Attached to the open conversation, or picked for the new chat's draft. */
  items = $state<KnowledgeItem[]>([]);
  /** Everything the user could attach (loaded when a picker opens). */
  options = $state<KnowledgeItem[]>([]);
  optionsLoaded = $state(false);
  /** Whose items these are: a conversation id, or null for the new chat's draft. */
  private owner: string | null = null;
  private gen = 0;

  /** A fresh chat: no picks yet. */
  reset(): void {
    this.gen++;
    this.owner = null;
    this.items = [];
  }

  async load(conversationId: string): Promise<void> {
    if (this.owner === conversationId) return;
    const gen = ++this.gen;
    this.owner = conversationId;
    this.items = [];
    try {
      const k = await filesApi.conversationKnowledge(conversationId);
      if (gen !== this.gen) return;
      this.items = [...k.collections.map(collectionItem), ...k.library_files.map((f) => fileItem(f, k.collections))];
    } catch {
      /* a chat that cannot be read shows its own error */
    }
  }

  async loadOptions(): Promise<void> {
    try {
      const [c, f] = await Promise.all([filesApi.collections(), filesApi.list()]);
      this.options = [
        ...c.items.map(collectionItem),
        // uploads into a chat belong to that chat; the library and collections are shared
        ...f.items.filter((x) => !x.conversation_id && x.status !== 'failed').map((x) => fileItem(x, c.items)),
      ];
    } catch (e) {
      toasts.error(`Could not load your knowledge: ${errorMessage(e)}`);
    } finally {
      this.optionsLoaded = true;
    }
  }

  /** Attach to the conversation (or keep it for the draft when there is none yet). */
  async add(item: KnowledgeItem, conversationId: string | null): Promise<void> {
    if (this.items.some((i) => sameItem(i, item))) return;
    this.items = [...this.items, item];
    if (!conversationId) return;
    try {
      await filesApi.link(conversationId, item.kind, item.id, 'PUT');
    } catch (e) {
      this.items = this.items.filter((i) => !sameItem(i, item));
      toasts.error(`Could not add “${item.name}”: ${errorMessage(e)}`);
    }
  }

  async remove(item: KnowledgeItem, conversationId: string | null): Promise<void> {
    this.items = this.items.filter((i) => !sameItem(i, item));
    if (!conversationId) return;
    try {
      await filesApi.link(conversationId, item.kind, item.id, 'DELETE');
    } catch (e) {
      this.items = [...this.items, item];
      toasts.error(`Could not remove “${item.name}”: ${errorMessage(e)}`);
    }
  }

  /** The new chat now exists: attach what was picked for its draft. */
  async applyDraft(conversationId: string): Promise<void> {
    const picked = this.owner === null ? this.items : [];
    this.owner = conversationId;
    for (const item of picked) {
      try {
        await filesApi.link(conversationId, item.kind, item.id, 'PUT');
      } catch (e) {
        this.items = this.items.filter((i) => !sameItem(i, item));
        toasts.error(`Could not add “${item.name}”: ${errorMessage(e)}`);
      }
    }
  }
}

export const knowledge = new KnowledgeStore();
