// The composer's globe: a model that cannot call tools turns it into an explanation
// (never a lit globe that searches nothing), before "not set up", since setting search
// up would not help that model.
import { describe, expect, it } from 'vitest';
import { globeState, noToolsReason } from '../src/lib/websearch';

const tools = { tool_use: true };
const toolless = { tool_use: false };

describe('the web search globe', () => {
  it('is on or off as toggled when the server searches and the model calls tools', () => {
    expect(globeState(true, true, tools)).toBe('on');
    expect(globeState(true, false, tools)).toBe('off');
    expect(globeState(true, true, undefined)).toBe('on'); // models not loaded yet
  });

  it('is never on for a model without tool use, whatever was toggled', () => {
    expect(globeState(true, true, toolless)).toBe('no-tools');
    expect(globeState(true, false, toolless)).toBe('no-tools');
    expect(globeState(null, true, toolless)).toBe('no-tools');
    expect(globeState(false, true, toolless)).toBe('no-tools');
  });

  it('says search is not set up for a model that could use it', () => {
    expect(globeState(false, false, tools)).toBe('unavailable');
    expect(globeState(null, true, tools)).toBe('unknown');
  });

  it('names the model in its reason', () => {
    expect(noToolsReason({ display_name: 'SmolLM2 135M (demo)', ref: 'local/smol' })).toBe(
      'SmolLM2 135M (demo) cannot search the web: choose another model.',
    );
    expect(noToolsReason({ display_name: '', ref: 'local/smol' })).toContain('local/smol cannot search');
    expect(noToolsReason(undefined)).toBe('This model cannot search the web: choose another model.');
  });
});
