import { describe, expect, it } from 'vitest';
import { freeName, localStateLabel, nameForUrl, needsRealModel, pickModel, setupDismissed } from '../src/lib/setup';
import type { ModelInfo, User } from '../src/lib/api/types';

const model = (ref: string, demo = false): ModelInfo => ({
  ref,
  provider: ref.split('/')[0],
  name: ref.split('/')[1],
  display_name: ref,
  context_window: 4096,
  supports_tools: false,
  supports_vision: false,
  input_price: 0,
  output_price: 0,
  tool_use: !demo,
  demo,
});

describe('first-run setup helpers', () => {
  it('asks for a real model while only the demo starter is there', () => {
    expect(needsRealModel([model('local/smollm2-135m-instruct', true)])).toBe(true);
    expect(needsRealModel([])).toBe(true);
    expect(needsRealModel([model('local/smollm2-135m-instruct', true), model('ollama/llama3.2')])).toBe(false);
  });

  it('names the local model state as a state, never an error', () => {
    const local = (status: 'not_loaded' | 'loading' | 'ready') => ({ status, detail: '', ref: null, demo: true });
    expect(localStateLabel(local('not_loaded'))).toBe('loads on first message');
    expect(localStateLabel(local('loading'))).toBe('loading…');
    expect(localStateLabel(local('ready'))).toBe('ready');
    expect(localStateLabel(null)).toBe('');
  });

  it('picks free provider names and sensible models', () => {
    expect(freeName('ollama', [])).toBe('ollama');
    expect(freeName('ollama', ['ollama', 'ollama-2'])).toBe('ollama-3');
    expect(freeName('My Server!', [])).toBe('my-server-');
    expect(nameForUrl('https://api.groq.com/openai/v1')).toBe('groq');
    expect(nameForUrl('not a url')).toBe('provider');
    expect(nameForUrl('http://127.0.0.1:8000/v1')).toBe('custom');
    expect(nameForUrl('http://[::1]:8000/v1')).toBe('custom');
    expect(pickModel(['a', 'gpt-4.1-mini'], ['gpt-4.1-mini'])).toBe('gpt-4.1-mini');
    expect(pickModel(['a', 'b'], ['gpt-4.1-mini'])).toBe('a');
    expect(pickModel([], ['x'])).toBe('');
  });

  it('remembers a closed setup on the account', () => {
    expect(setupDismissed(null)).toBe(false);
    expect(setupDismissed({ preferences: { setup_dismissed: true } } as unknown as User)).toBe(true);
    expect(setupDismissed({ preferences: {} } as unknown as User)).toBe(false);
  });
});
