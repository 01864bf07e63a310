/** Usage views: the period picker's choices, the daily bar chart's geometry, the
 * tables' rows and the prices form. Pure functions, so Vitest covers them. */
import type { components } from './api/schema';

type Schemas = components['schemas'];
export type UsageTotal = Schemas['UsageTotalOut'];
export type UsageSummary = Schemas['UsageSummary'];
export type AdminUsageSummary = Schemas['AdminUsageSummary'];
export type ModelPrice = Schemas['ModelPriceOut'];
export type PriceList = Schemas['PriceList'];
export type PriceIn = Schemas['PriceIn'];

/** The periods the picker offers, in days (today included, UTC). */
export const PERIODS: { days: number; label: string }[] = [
  { days: 1, label: 'Today' },
  { days: 7, label: '7 days' },
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: 365, label: '12 months' },
];

/** A cost in the instance's currency: whole units for 0, five decimals below one
 * cent (a chat message costs fractions of a cent), else four. */
export function formatMoney(value: number | null | undefined, currency = 'USD'): string {
  if (value === null || value === undefined) return '—';
  const digits = value === 0 ? 0 : Math.abs(value) < 0.01 ? 5 : value >= 100 ? 2 : 4;
  try {
    return new Intl.NumberFormat('en', {
      style: 'currency',
      currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(value);
  } catch {
    return `${value.toFixed(digits)} ${currency}`;
  }
}

/** Every day of the period (UTC, oldest first) with its total, zero for a day
 * without calls, so the chart shows gaps as gaps. */
export function fillDays(since: string, days: number, totals: UsageTotal[], today: Date = new Date()): UsageTotal[] {
  const byDay = new Map(totals.map((t) => [t.key ?? '', t]));
  const start = new Date(since);
  const out: UsageTotal[] = [];
  const end = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  let t = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
  for (let n = 0; n < days && t <= end; n++, t += 86_400_000) {
    const key = new Date(t).toISOString().slice(0, 10);
    out.push(
      byDay.get(key) ?? {
        key,
        name: null,
        requests: 0,
        input_tokens: 0,
        cached_input_tokens: 0,
        output_tokens: 0,
        cost: 0,
      },
    );
  }
  return out;
}

export type Measure = 'cost' | 'tokens' | 'requests';

export function measureOf(t: UsageTotal, measure: Measure): number {
  if (measure === 'cost') return t.cost;
  if (measure === 'tokens') return t.input_tokens + t.output_tokens;
  return t.requests;
}

export interface Bar {
  key: string;
  x: number;
  y: number;
  width: number;
  height: number;
  value: number;
}

/** The bars of a chart ``width`` x ``height`` (SVG units) for ``totals``: the
 * tallest bar fills the height, a non-zero value gets at least one unit (visible). */
export function bars(totals: UsageTotal[], measure: Measure, width: number, height: number): Bar[] {
  if (totals.length === 0) return [];
  const values = totals.map((t) => measureOf(t, measure));
  const top = Math.max(...values);
  const slot = width / totals.length;
  const gap = Math.min(4, slot * 0.2);
  return totals.map((t, i) => {
    const value = values[i];
    const h = top > 0 ? Math.max(value > 0 ? 1 : 0, (value / top) * height) : 0;
    return { key: t.key ?? '', x: i * slot + gap / 2, y: height - h, width: slot - gap, height: h, value };
  });
}

/** Rows of a table, largest cost first (then most requests); ``label`` names a row
 * whose key is null (calls made without an API key, outside any project...). */
export function tableRows(totals: UsageTotal[], label: string): { label: string; total: UsageTotal }[] {
  return [...totals]
    .sort((a, b) => b.cost - a.cost || b.requests - a.requests)
    .map((total) => ({ label: total.name || total.key || label, total }));
}

/** The sum of ``totals`` (the period's headline numbers). */
export function sumTotals(totals: UsageTotal[]): UsageTotal {
  return totals.reduce(
    (acc, t) => ({
      ...acc,
      requests: acc.requests + t.requests,
      input_tokens: acc.input_tokens + t.input_tokens,
      cached_input_tokens: acc.cached_input_tokens + t.cached_input_tokens,
      output_tokens: acc.output_tokens + t.output_tokens,
      cost: acc.cost + t.cost,
    }),
    { key: null, name: null, requests: 0, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0, cost: 0 },
  );
}

/** A price typed in the prices table: a number >= 0, or an error to show. */
export function parsePrice(text: string): number | string {
  const value = Number(text.trim().replace(',', '.'));
  if (text.trim() === '' || !Number.isFinite(value)) return 'Enter a number, e.g. 2.5';
  if (value < 0) return 'A price cannot be negative';
  if (value > 1_000_000) return 'That is more than a million per million tokens';
  return value;
}

/** The body of `PUT /api/admin/prices` from the three fields, or the first error. */
export function priceBody(model: string, input: string, cached: string, output: string): PriceIn | string {
  const values = [parsePrice(input), parsePrice(cached), parsePrice(output)];
  const error = values.find((v) => typeof v === 'string');
  if (typeof error === 'string') return error;
  const [input_price, cached_input_price, output_price] = values as number[];
  return { model, input_price, cached_input_price, output_price };
}

/** Where the CSV of a period downloads from. */
export function csvUrl(admin: boolean, days: number): string {
  return `${admin ? '/api/admin/usage.csv' : '/api/me/usage.csv'}?days=${days}`;
}

/** What made the calls (the ledger's `endpoint`), in words. */
export const ENDPOINT_LABELS: Record<string, string> = {
  chat: 'Chats',
  responses: 'Responses API',
  'chat.completions': 'Chat Completions API',
  embeddings: 'Embeddings',
  title: 'Chat titles',
  memory: 'Memory',
  summary: 'Summaries of long chats',
  compact: 'Compaction API',
  'audio.transcriptions': 'Audio transcriptions API',
  'audio.speech': 'Audio speech API',
  dictation: 'Dictation',
  read_aloud: 'Read aloud',
  file_transcript: 'Audio file transcripts',
};

/** Totals with their key put into words (endpoint labels), for the tables. */
export function labelled(totals: UsageTotal[], labels: Record<string, string>): UsageTotal[] {
  return totals.map((t) => ({ ...t, name: t.name ?? (t.key ? labels[t.key] ?? t.key : null) }));
}
