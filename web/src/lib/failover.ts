// The line under an answer that another model gave, or that took retries:
// "Answered by beta/m after alpha/m failed: rate limited". Built from the message's
// `attempts` (the server stores them only when a model call failed first).
import type { Attempt, Message } from './api/types';

/** What failed, per model in order: "alpha/m (rate limited)". */
function failures(attempts: Attempt[]): string[] {
  const byModel = new Map<string, string[]>();
  for (const a of attempts) {
    if (a.error === null) continue;
    const labels = byModel.get(a.model) ?? [];
    if (!labels.includes(a.label)) labels.push(a.label);
    byModel.set(a.model, labels);
  }
  return [...byModel].map(([model, labels]) => `${model} (${labels.join(', ')})`);
}

export function failoverNotice(message: Pick<Message, 'attempts'>): string {
  const attempts = message.attempts ?? [];
  if (!attempts.some((a) => a.error !== null)) return '';
  const answered = attempts.find((a) => a.error === null);
  if (!answered) return `Tried ${failures(attempts).join(', ')}.`;
  const others = attempts.filter((a) => a.error !== null && a.model !== answered.model);
  if (!others.length) {
    const retries = attempts.filter((a) => a.error !== null);
    const count = retries.length === 1 ? 'a retry' : `${retries.length} retries`;
    return `Answered by ${answered.model} after ${count}: ${retries[0].label}.`;
  }
  const failed = failures(attempts.filter((a) => a.model !== answered.model));
  if (failed.length === 1 && others.every((a) => a.label === others[0].label)) {
    return `Answered by ${answered.model} after ${others[0].model} failed: ${others[0].label}.`;
  }
  return `Answered by ${answered.model} after ${failed.join(' and ')} failed.`;
}
