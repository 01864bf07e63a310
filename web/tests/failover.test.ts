import { describe, expect, it } from 'vitest';
import { failoverNotice } from '../src/lib/failover';
import type { Attempt } from '../src/lib/api/types';

const at = '2026-12-07T20:00:00.000Z';
const fail = (model: string, error: string, label: string): Attempt => ({ model, error, label, at, ms: 5 });
const ok = (model: string): Attempt => ({ model, error: null, label: '', at, ms: 40 });

describe('failoverNotice', () => {
  it('is empty when the first try answered', () => {
    expect(failoverNotice({ attempts: null })).toBe('');
    expect(failoverNotice({ attempts: [ok('a/m')] })).toBe('');
  });

  it('names the fallback and why the model before it failed', () => {
    const attempts = [fail('a/m', 'provider_rate_limited', 'rate limited'), fail('a/m', 'provider_rate_limited', 'rate limited'), ok('b/m')];
    expect(failoverNotice({ attempts })).toBe('Answered by b/m after a/m failed: rate limited.');
  });

  it('counts retries of the same model', () => {
    expect(failoverNotice({ attempts: [fail('a/m', 'provider_unavailable', 'unavailable'), ok('a/m')] }))
      .toBe('Answered by a/m after a retry: unavailable.');
  });

  it('lists several failed models with their reasons', () => {
    const attempts = [fail('a/m', 'provider_timeout', 'timed out'), fail('c/m', 'circuit_open', 'paused after repeated failures'), ok('b/m')];
    expect(failoverNotice({ attempts })).toBe('Answered by b/m after a/m (timed out) and c/m (paused after repeated failures) failed.');
  });

  it('says what was tried when nothing answered', () => {
    const attempts = [fail('a/m', 'provider_unavailable', 'unavailable'), fail('b/m', 'provider_auth', 'access refused')];
    expect(failoverNotice({ attempts })).toBe('Tried a/m (unavailable), b/m (access refused).');
  });
});
