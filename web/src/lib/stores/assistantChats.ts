// Starting a chat with an assistant from its card, a starter or the builder: the
// server makes the conversation (with the assistant), the chat view opens it, and a
// starter is sent as the first message.
import { conversations as convApi } from '../api/client';
import { assistantsApi } from '../assistants';
import { chat } from './chat.svelte';
import { conversations } from './conversations.svelte';
import { chatPath, router } from './router.svelte';

export async function startAssistantChat(assistantId: string, starter?: string): Promise<void> {
  const { conversation_id } = await assistantsApi.startChat(assistantId);
  const detail = await convApi.get(conversation_id);
  conversations.upsert(detail.conversation, true);
  router.navigate(chatPath(conversation_id));
  await chat.open(conversation_id);
  if (starter) await chat.send(starter);
}
