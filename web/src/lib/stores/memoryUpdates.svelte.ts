// The `memory_updated` events of the answers being written, by assistant message id:
// the "Memory updated" chip shows them before the stored answer (whose `sources`
// keep the same memories, each with its `action`) replaces the live one.
import type { MemoryUpdatedEvent } from '../api/events';
import type { MemorySource } from '../api/types';

class MemoryUpdates {
  byMessage = $state<Record<string, { memories: MemorySource[]; url: string }>>({});

  add(messageId: string, event: MemoryUpdatedEvent): void {
    const prior = this.byMessage[messageId]?.memories ?? [];
    this.byMessage = { ...this.byMessage, [messageId]: { memories: [...prior, ...event.memories], url: event.url } };
  }
}

export const memoryUpdates = new MemoryUpdates();
