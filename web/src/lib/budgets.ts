/** Budgets and rate limits: the words and numbers Admin → Budgets and Settings →
 * Usage show, and the admin form's checks. Pure functions, so Vitest covers them. */
import type { components } from './api/schema';
import { formatMoney } from './usage';

type Schemas = components['schemas'];
export type Budget = Schemas['BudgetOut'];
export type BudgetList = Schemas['BudgetList'];
export type BudgetIn = Schemas['BudgetIn'];
export type ScopeChoices = Schemas['ScopeChoices'];
export type ScopeChoice = Schemas['ScopeChoice'];
export type BudgetScope = Budget['scope'];
export type BudgetKind = Budget['kind'];
export type BudgetPeriod = Budget['period'];

export const SCOPES: { id: BudgetScope; label: string }[] = [
  { id: 'instance', label: 'Everyone (this server)' },
  { id: 'group', label: 'A group' },
  { id: 'user', label: 'A user' },
  { id: 'project', label: 'A project' },
  { id: 'key', label: 'An API key' },
];

export const KINDS: { id: BudgetKind; label: string }[] = [
  { id: 'cost', label: 'Budget (amount)' },
  { id: 'requests', label: 'Requests per minute' },
  { id: 'tokens', label: 'Tokens per minute' },
];

export const PERIODS: { id: BudgetPeriod; label: string }[] = [
  { id: 'day', label: 'Per day' },
  { id: 'week', label: 'Per week' },
  { id: 'month', label: 'Per month' },
  { id: 'total', label: 'In total' },
];

/** "Daily budget", "Requests per minute". */
export function limitName(b: Pick<Budget, 'kind' | 'period'>): string {
  if (b.kind === 'requests') return 'Requests per minute';
  if (b.kind === 'tokens') return 'Tokens per minute';
  const per: Record<string, string> = { day: 'Daily', week: 'Weekly', month: 'Monthly', total: 'Total' };
  return `${per[b.period] ?? ''} budget`.trim();
}

/** "Everyone", "user@example.com", "group Research", "project Atlas (owner@example.com)". */
export function scopeName(b: Pick<Budget, 'scope' | 'scope_name'>): string {
  if (b.scope === 'instance') return 'Everyone';
  if (b.scope === 'user') return b.scope_name;
  return `${b.scope === 'key' ? 'API key' : b.scope} ${b.scope_name}`;
}

/** What the form's picker calls a scope: "a group", "an API key". */
export function aScope(scope: BudgetScope): string {
  return scope === 'key' ? 'an API key' : scope === 'instance' ? 'everyone' : `a ${scope}`;
}

/** An amount in the limit's unit. */
export function amountText(b: Pick<Budget, 'kind'>, value: number, currency: string): string {
  if (b.kind === 'cost') return formatMoney(value, currency);
  return `${Math.round(value).toLocaleString('en')} ${b.kind}`;
}

/** "2.3400 USD of 10.00 USD used (23%)". */
export function useText(b: Budget, currency: string): string {
  const share = b.amount > 0 ? Math.min(100, Math.round((b.spent / b.amount) * 100)) : 100;
  return `${amountText(b, b.spent, currency)} of ${amountText(b, b.amount, currency)} used (${share}%)`;
}

/** The bar's state: over 80% warns, 100% is spent. */
export function level(b: Pick<Budget, 'used'>): 'ok' | 'warn' | 'spent' {
  if (b.used >= 1) return 'spent';
  return b.used >= 0.8 ? 'warn' : 'ok';
}

/** When it resets, in the reader's time; "never" for a total budget. */
export function resetText(b: Pick<Budget, 'resets_at'>): string {
  if (!b.resets_at) return 'never';
  return new Date(b.resets_at).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
}

/** The form's values as a request body, or what is wrong with them. */
export function budgetBody(form: {
  scope: BudgetScope;
  scope_id: string;
  kind: BudgetKind;
  period: BudgetPeriod;
  amount: string;
  downgrade_model: string;
}): BudgetIn | string {
  const amount = Number(form.amount.trim().replace(',', '.'));
  if (!form.amount.trim() || !Number.isFinite(amount) || amount < 0) return 'Enter an amount of 0 or more';
  if (form.scope !== 'instance' && !form.scope_id.trim()) return `Choose the ${form.scope === 'key' ? 'API key' : form.scope}`;
  const rate = form.kind !== 'cost';
  return {
    scope: form.scope,
    scope_id: form.scope === 'instance' ? '' : form.scope_id.trim(),
    kind: form.kind,
    period: rate ? 'minute' : form.period,
    amount,
    downgrade_model: rate ? null : form.downgrade_model || null,
  };
}

/** The chat's banner: a line per cost budget of the user at 80% or more. */
export function warnings(items: Budget[], currency: string): string[] {
  const out: string[] = [];
  for (const b of items) {
    if (b.kind !== 'cost' || b.used < 0.8) continue;
    const whose = b.scope === 'user' ? 'your' : b.scope === 'instance' ? "everyone's" : `the ${scopeName(b)}`;
    const name = `${whose} ${limitName(b).toLowerCase()}`;
    const resets = b.resets_at ? `; it resets ${resetText(b)}` : '';
    if (b.used >= 1) {
      const then = b.downgrade_model ? `answers now come from ${b.downgrade_model}` : 'requests are refused';
      out.push(`You have spent ${name}: ${then}${resets}.`);
    } else {
      out.push(`You have used ${Math.floor(b.used * 100)}% of ${name} (${useText(b, currency).split(' used')[0]})${resets}.`);
    }
  }
  return out;
}
