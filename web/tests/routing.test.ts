import { describe, expect, it } from 'vitest';
import { describeRule, routeNotice } from '../src/lib/routing';

describe('routeNotice', () => {
  it('is empty when the chat named its model', () => {
    expect(routeNotice({ route: null, model: 'p/m' })).toBe('');
  });

  it('names the routed model and the reason', () => {
    const route = { auto: true, rule: 'light', reason: 'short question', scope: 'instance' };
    expect(routeNotice({ route, model: 'openai/gpt-4o-mini' })).toBe('Auto → openai/gpt-4o-mini: short question');
  });
});

describe('describeRule', () => {
  it('says when each rule applies', () => {
    expect(describeRule({ kind: 'vision', model: 'p/eyes', min_tokens: null, at: null })).toBe('Images attached → p/eyes');
    expect(describeRule({ kind: 'long_context', model: 'p/long', min_tokens: 50000, at: null })).toBe('Longer than 50,000 tokens → p/long');
    expect(describeRule({ kind: 'long_context', model: 'p/long', min_tokens: null, at: null })).toBe("Longer than ¾ of the default model's window → p/long");
    expect(describeRule({ kind: 'budget', model: 'p/cheap', min_tokens: null, at: 0.9 })).toBe('Budget 90% used → p/cheap');
  });
});

describe('Auto and the first-run setup', () => {
  it('does not count as a real model', async () => {
    const { needsRealModel } = await import('../src/lib/setup');
    const model = (ref: string, demo: boolean, auto = false) => ({
      ref, provider: 'p', name: ref, display_name: ref, context_window: 1, supports_tools: false,
      supports_vision: false, input_price: 0, output_price: 0, tool_use: true, demo, auto,
    });
    expect(needsRealModel([model('local/starter', true), model('auto', false, true)])).toBe(true);
    expect(needsRealModel([model('p/real', false), model('auto', false, true)])).toBe(false);
  });
});
