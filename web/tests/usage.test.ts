import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Prices from '../src/components/admin/Prices.svelte';
import UsageView from '../src/components/usage/UsageView.svelte';
import { messageMeta } from '../src/lib/format';
import {
  bars,
  csvUrl,
  fillDays,
  formatMoney,
  parsePrice,
  priceBody,
  sumTotals,
  tableRows,
  type ModelPrice,
  type UsageTotal,
} from '../src/lib/usage';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function total(key: string | null, over: Partial<UsageTotal> = {}): UsageTotal {
  return { key, name: null, requests: 1, input_tokens: 100, cached_input_tokens: 0, output_tokens: 10, cost: 0.001, ...over };
}

describe('usage logic', () => {
  it('formats money in the instance currency', () => {
    expect(formatMoney(0)).toBe('$0');
    expect(formatMoney(0.00012)).toBe('$0.00012');
    expect(formatMoney(1.5)).toBe('$1.5000');
    expect(formatMoney(0.002, 'EUR')).toBe('€0.00200');
    expect(formatMoney(null)).toBe('—');
    expect(formatMoney(1, 'XYZ')).toContain('XYZ'); // an unknown code still reads
  });

  it('fills every day of the period, gaps as zero', () => {
    const today = new Date('2026-12-07T15:00:00Z');
    const days = fillDays('2026-12-05T00:00:00+00:00', 3, [total('2026-12-06', { requests: 4 })], today);
    expect(days.map((d) => [d.key, d.requests])).toEqual([
      ['2026-12-05', 0],
      ['2026-12-06', 4],
      ['2026-12-07', 0],
    ]);
  });

  it('scales bars to the tallest and keeps a tiny one visible', () => {
    const shown = bars([total('a', { cost: 10 }), total('b', { cost: 0.001 }), total('c', { cost: 0 })], 'cost', 300, 100);
    expect(shown.map((b) => Math.round(b.height))).toEqual([100, 1, 0]);
    expect(shown[0].y).toBe(0);
    expect(shown[1].x).toBeGreaterThan(shown[0].x);
    expect(bars([], 'cost', 300, 100)).toEqual([]);
    expect(bars([total('a', { cost: 0 })], 'cost', 300, 100)[0].height).toBe(0); // nothing spent: no NaN
  });

  it('orders table rows by cost and names the keyless row', () => {
    const rows = tableRows([total(null, { cost: 1 }), total('k2', { name: 'ci', cost: 3 })], 'Web app (no key)');
    expect(rows.map((r) => r.label)).toEqual(['ci', 'Web app (no key)']);
    expect(sumTotals([total('a'), total('b')]).input_tokens).toBe(200);
  });

  it('checks typed prices', () => {
    expect(parsePrice('2,5')).toBe(2.5);
    expect(parsePrice('')).toMatch(/number/);
    expect(parsePrice('-1')).toMatch(/negative/);
    expect(priceBody('a/b', '1', '0.1', 'x')).toMatch(/number/);
    expect(priceBody('a/b', '1', '0.1', '4')).toEqual({ model: 'a/b', input_price: 1, cached_input_price: 0.1, output_price: 4 });
    expect(csvUrl(true, 7)).toBe('/api/admin/usage.csv?days=7');
    expect(csvUrl(false, 30)).toBe('/api/me/usage.csv?days=30');
  });

  it("shows a message's cost in the currency", () => {
    const meta = messageMeta({ model: 'a/b', cost: 0.002, input_tokens: 10, output_tokens: 2 } as never, 'EUR');
    expect(meta).toContain('€0.00200');
  });
});

describe('UsageView', () => {
  it('says there is nothing yet rather than showing an empty chart', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Response.json({ since: '2026-11-08T00:00:00Z', currency: 'USD', by_day: [], by_model: [], by_key: [] })),
    );
    const { getByTestId, queryByTestId } = render(UsageView);
    await waitFor(() => expect(getByTestId('usage-empty').textContent).toContain('No model calls'));
    expect(queryByTestId('usage-chart')).toBeNull();
    expect(getByTestId('usage-csv').getAttribute('href')).toBe('/api/me/usage.csv?days=30');
  });

  it('loads the chosen period and draws a bar per day', async () => {
    const asked: string[] = [];
    const today = new Date().toISOString().slice(0, 10);
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        asked.push(url);
        const since = new Date(Date.now() - 6 * 86_400_000).toISOString();
        return Response.json({
          since,
          currency: 'USD',
          by_day: [total(today, { requests: 3, cost: 0.5 })],
          by_model: [total('openai/gpt-4o', { requests: 3, cost: 0.5 })],
          by_key: [total(null, { requests: 3, cost: 0.5 })],
        });
      }),
    );
    const { getByTestId, getAllByTestId } = render(UsageView);
    await waitFor(() => expect(getByTestId('usage-totals').textContent).toContain('$0.5000'));
    await fireEvent.change(getByTestId('usage-period'), { target: { value: '7' } });
    await waitFor(() => expect(asked).toContain('/api/me/usage?days=7'));
    await waitFor(() => expect(getAllByTestId('usage-bar')).toHaveLength(7));
    expect(getByTestId('usage-by-key').textContent).toContain('Web app (no key)');
  });
});

describe('Prices', () => {
  it('saves an edited price in place', async () => {
    const price: ModelPrice = {
      model: 'openai/gpt-4o',
      display_name: 'GPT-4o',
      input_price: 2.5,
      cached_input_price: 1.25,
      output_price: 10,
      source: 'default',
      default_input_price: 2.5,
      default_cached_input_price: 1.25,
      default_output_price: 10,
      listed: true,
      updated_at: null,
    };
    const sent: unknown[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        if (init?.method === 'PUT') {
          sent.push(JSON.parse(String(init.body)));
          return Response.json({ ...price, input_price: 3, source: 'admin' });
        }
        return Response.json({ currency: 'USD', items: [price] });
      }),
    );
    const { getByTestId, findByTestId } = render(Prices);
    const input = await findByTestId('price-input');
    expect((getByTestId('price-save') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(input, { target: { value: '3' } });
    await fireEvent.click(getByTestId('price-save'));
    await waitFor(() => expect(sent).toEqual([{ model: 'openai/gpt-4o', input_price: 3, cached_input_price: 1.25, output_price: 10 }]));
    await waitFor(() => expect(getByTestId('prices-table').textContent).toContain('Set here'));
  });
});
