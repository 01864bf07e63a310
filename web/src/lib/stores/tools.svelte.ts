// Live tool state of the open chat: calls waiting for the user's approval
// (from `tool_confirm` events, or re-read after a reload) and the sources
// streamed for answers still being written.
import { errorMessage } from '../api/client';
import { toolsApi } from '../tools';
import type { MessageSource, PendingCall } from '../api/types';
import type { ToolConfirmEvent } from '../api/events';

/** A call waiting for the user: from the server's list, or from a `tool_confirm` event. */
export type AskedCall = Pick<PendingCall, 'id' | 'conversation_id' | 'name' | 'arguments'>;
import { toasts } from './toasts.svelte';

class ToolCalls {
  pending = $state<AskedCall[]>([]);
  /** Sources per assistant message id while it streams (stored messages carry their own). */
  liveSources = $state<Record<string, MessageSource[]>>({});
  busy = $state<string | null>(null);

  ask(conversationId: string, call: ToolConfirmEvent): void {
    if (this.pending.some((p) => p.id === call.id && p.conversation_id === conversationId)) return;
    this.pending = [...this.pending, { id: call.id, conversation_id: conversationId, name: call.name, arguments: call.arguments }];
  }

  setSources(messageId: string, sources: MessageSource[]): void {
    this.liveSources = { ...this.liveSources, [messageId]: sources };
  }

  /** The turn ended: whatever was still asked has expired on the server. */
  settle(): void {
    this.pending = [];
  }

  async load(conversationId: string): Promise<void> {
    let loaded: AskedCall[] = [];
    try {
      const { items } = await toolsApi.pending(conversationId);
      loaded = items.map((i) => ({ ...i, conversation_id: conversationId }));
    } catch {
      // nothing to re-ask; calls asked by the live stream stay
    }
    // A `tool_confirm` that arrived while this request was on its way (a new chat
    // opens and streams at once) must not be wiped by the older answer.
    const live = this.pending.filter(
      (p) => p.conversation_id === conversationId && !loaded.some((l) => l.id === p.id),
    );
    this.pending = [...loaded, ...live];
  }

  async decide(call: AskedCall, approve: boolean): Promise<void> {
    this.busy = call.id;
    try {
      await toolsApi.decide(call.conversation_id, call.id, approve);
    } catch (e) {
      toasts.error(`Could not send your answer: ${errorMessage(e)}`);
    } finally {
      this.busy = null;
      this.pending = this.pending.filter((p) => !(p.id === call.id && p.conversation_id === call.conversation_id));
    }
  }
}

export const toolCalls = new ToolCalls();

/** Human names of the tools ("Calculator" for `calculator`), for step cards: read once
 * from `GET /api/tools`; a name it does not list is shown as it is. */
class ToolTitles {
  titles = $state<Record<string, string>>({});
  private asked = false;

  ensure(): void {
    if (this.asked) return;
    this.asked = true;
    toolsApi.list().then(
      (list) => {
        const titles: Record<string, string> = {};
        for (const t of [...(list?.items ?? []), ...(list?.unavailable ?? [])]) if (t?.title) titles[t.name] = t.title;
        this.titles = titles;
      },
      () => {
        this.asked = false; // try again next time a step is shown
      },
    );
  }

  of(name: string): string {
    return this.titles[name] || name;
  }
}

export const toolTitles = new ToolTitles();
