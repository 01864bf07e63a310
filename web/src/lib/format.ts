import type { Message } from './api/types';
import { formatMoney } from './usage';

export function formatTokens(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return n.toLocaleString();
}

/** A cost in the instance's currency (`session.config.currency`). */
export function formatCost(c: number | null | undefined, currency = 'USD'): string {
  return formatMoney(c, currency);
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** One-line summary for an assistant message's metadata. */
export function messageMeta(m: Message, currency = 'USD'): string {
  const parts: string[] = [];
  if (m.model) parts.push(m.model);
  if (m.input_tokens != null || m.output_tokens != null)
    parts.push(`${formatTokens(m.input_tokens)} in / ${formatTokens(m.output_tokens)} out tokens`);
  if (m.cost != null) parts.push(formatCost(m.cost, currency));
  if (m.latency_ms != null) parts.push(`${formatMs(m.latency_ms)} total`);
  if (m.ttft_ms != null) parts.push(`${formatMs(m.ttft_ms)} to first token`);
  return parts.join(' · ');
}

export function stringifyArgs(a: unknown): string {
  if (typeof a === 'string') {
    try {
      return JSON.stringify(JSON.parse(a), null, 2);
    } catch {
      return a;
    }
  }
  try {
    return JSON.stringify(a, null, 2);
  } catch {
    return String(a);
  }
}
