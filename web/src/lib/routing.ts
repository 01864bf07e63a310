// The line under an answer Auto routed: "Auto → scripted/light: short question".
// Built from the message's `route` (the server stores it only when the chat's model
// was Auto) and the model that answered.
import type { Message, RoutingRule } from './api/types';

export function routeNotice(message: Pick<Message, 'route' | 'model'>): string {
  if (!message.route || !message.model) return '';
  return `Auto → ${message.model}: ${message.route.reason}`;
}

/** What each rule kind means, for the admin's rule editor. */
export const RULE_KINDS: Record<string, string> = {
  vision: 'Images attached',
  tools: 'Tools requested',
  long_context: 'Longer than…',
  light: 'A light question',
  heavy: 'A hard question',
  budget: 'Budget mostly used',
};

/** A rule as the editor shows it: "A hard question → openai/gpt-4o". */
export function describeRule(rule: Pick<RoutingRule, 'kind' | 'model' | 'min_tokens' | 'at'>): string {
  let when = RULE_KINDS[rule.kind] ?? rule.kind;
  if (rule.kind === 'long_context') when = rule.min_tokens ? `Longer than ${rule.min_tokens.toLocaleString('en-US')} tokens` : 'Longer than ¾ of the default model\'s window';
  if (rule.kind === 'budget') when = `Budget ${Math.round((rule.at ?? 0.8) * 100)}% used`;
  return `${when} → ${rule.model}`;
}
