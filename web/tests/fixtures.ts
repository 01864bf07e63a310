// Objects shaped like the server's answers (the generated API types), for tests.
import type { Conversation, Message } from '../src/lib/api/types';

export function message(id: string, role: string, parent: string | null, over: Partial<Message> = {}): Message {
  return {
    id, conversation_id: 'c1', parent_id: parent, role, content: '', reasoning: '', steps: [], sources: [],
    status: 'complete', provider: 'p', model: 'p/m', input_tokens: 0, output_tokens: 0, latency_ms: null,
    ttft_ms: null, finish_reason: null, cost: 0, error_code: null, error_message: null, attempts: null, route: null, feedback: 0, pinned: false,
    created_at: '2026-11-22T00:00:00Z', siblings: [id], ...over,
  };
}

export function conversation(id: string, over: Partial<Conversation> = {}): Conversation {
  return {
    id, title: '', model: null, pinned: false, archived: false, temporary: false, tools: null,
    created_at: '2026-11-22T00:00:00Z', updated_at: '2026-11-22T00:00:00Z', ...over,
  };
}
