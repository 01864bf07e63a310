import { describe, expect, it } from 'vitest';
import { aScope, budgetBody, level, limitName, scopeName, useText, warnings, type Budget } from '../src/lib/budgets';

function budget(over: Partial<Budget> = {}): Budget {
  return {
    id: 'b1', scope: 'user', scope_id: 'u1', scope_name: 'ana@example.com', kind: 'cost', period: 'day',
    amount: 10, downgrade_model: null, spent: 8.5, reserved: 0, remaining: 1.5, used: 0.85,
    resets_at: '2026-12-08T00:00:00Z', ...over,
  };
}

describe('budgets', () => {
  it('names limits and scopes as people read them', () => {
    expect(limitName(budget())).toBe('Daily budget');
    expect(limitName(budget({ kind: 'requests', period: 'minute' }))).toBe('Requests per minute');
    expect(scopeName(budget())).toBe('ana@example.com');
    expect(scopeName(budget({ scope: 'instance', scope_name: 'everyone' }))).toBe('Everyone');
    expect(scopeName(budget({ scope: 'key', scope_name: 'CI' }))).toBe('API key CI');
    expect(scopeName(budget({ scope: 'group', scope_name: 'Research' }))).toBe('group Research');
    expect(aScope('key')).toBe('an API key');
    expect(aScope('group')).toBe('a group');
  });

  it('warns at 80% and says spent at 100%', () => {
    expect(level(budget({ used: 0.5 }))).toBe('ok');
    expect(level(budget({ used: 0.8 }))).toBe('warn');
    expect(level(budget({ used: 1.2 }))).toBe('spent');
    expect(useText(budget(), 'USD')).toBe('$8.5000 of $10.0000 used (85%)');
  });

  it('turns the form into a body, or says what is wrong', () => {
    const form = { scope: 'user' as const, scope_id: 'u1', kind: 'cost' as const, period: 'week' as const, amount: '2,5', downgrade_model: 'local/small' };
    expect(budgetBody(form)).toEqual({ scope: 'user', scope_id: 'u1', kind: 'cost', period: 'week', amount: 2.5, downgrade_model: 'local/small' });
    expect(budgetBody({ ...form, kind: 'requests' })).toEqual({ scope: 'user', scope_id: 'u1', kind: 'requests', period: 'minute', amount: 2.5, downgrade_model: null });
    expect(budgetBody({ ...form, scope: 'instance', scope_id: 'x' })).toMatchObject({ scope_id: '' });
    expect(budgetBody({ ...form, amount: '-1' })).toBe('Enter an amount of 0 or more');
    expect(budgetBody({ ...form, scope: 'key', scope_id: ' ' })).toBe('Choose the API key');
  });
});

describe('the chat banner', () => {
  it('warns at 80% and says what happens once spent', () => {
    expect(warnings([budget({ used: 0.5 })], 'USD')).toEqual([]);
    expect(warnings([budget({ kind: 'requests', period: 'minute', used: 0.9 })], 'USD')).toEqual([]);
    const [line] = warnings([budget()], 'USD');
    expect(line).toMatch(/^You have used 85% of your daily budget \(\$8\.5000 of \$10\.0000\); it resets /);
    const [spent] = warnings([budget({ used: 1, downgrade_model: 'local/small', resets_at: null })], 'USD');
    expect(spent).toBe('You have spent your daily budget: answers now come from local/small.');
  });
});
