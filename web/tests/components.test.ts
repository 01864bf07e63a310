import { cleanup, fireEvent, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import BranchNav from '../src/components/chat/BranchNav.svelte';
import Composer from '../src/components/chat/Composer.svelte';
import Markdown from '../src/components/chat/Markdown.svelte';
import Highlighted from '../src/components/sidebar/Highlighted.svelte';
import { models } from '../src/lib/stores/models.svelte';

afterEach(() => cleanup());

describe('Highlighted', () => {
  it('renders marks from offsets as text, never HTML', () => {
    const { container } = render(Highlighted, { text: '<b>x</b> needle here', highlights: [[9, 15]] });
    expect(container.querySelector('b')).toBeNull();
    expect(container.querySelector('mark')!.textContent).toBe('needle');
    expect(container.textContent).toBe('<b>x</b> needle here');
  });
});

describe('BranchNav', () => {
  it('shows position and switches siblings', async () => {
    const onswitch = vi.fn();
    const { getByTestId } = render(BranchNav, { siblings: ['a', 'b', 'c'], current: 'b', onswitch });
    expect(getByTestId('branch-label').textContent).toBe('2/3');
    await fireEvent.click(getByTestId('branch-prev'));
    await fireEvent.click(getByTestId('branch-next'));
    expect(onswitch.mock.calls).toEqual([['a'], ['c']]);
  });

  it('is hidden for a single version and disables edges', () => {
    const { container } = render(BranchNav, { siblings: ['a'], current: 'a', onswitch: () => {} });
    expect(container.querySelector('[data-testid=branch-label]')).toBeNull();
    cleanup();
    const r = render(BranchNav, { siblings: ['a', 'b'], current: 'a', onswitch: () => {} });
    expect((r.getByTestId('branch-prev') as HTMLButtonElement).disabled).toBe(true);
  });
});

describe('Markdown component', () => {
  it('inserts only sanitized HTML', () => {
    const { container } = render(Markdown, { source: 'hi <img src=x onerror=alert(1)> [a](javascript:alert(1)) ![i](https://h.example/i.png)' });
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('[onerror]')).toBeNull();
    expect(container.querySelector('a')).toBeNull();
    expect(container.querySelector('button.img-load')!.textContent).toBe('Load image from h.example');
  });
});

describe('Composer', () => {
  it('is disabled with a reason when no model is available', () => {
    models.items = [];
    models.loaded = true;
    const { getByTestId } = render(Composer);
    expect((getByTestId('composer') as HTMLTextAreaElement).disabled).toBe(true);
    expect(getByTestId('composer-disabled-reason').textContent).toMatch(/No model is available/);
    expect((getByTestId('attach') as HTMLButtonElement).disabled).toBe(true);
  });

  it('enables send when a model exists and text is typed', async () => {
    models.items = [{ ref: 'p/m', provider: 'p', name: 'm', display_name: 'M', context_window: 1, supports_tools: false, supports_vision: false, input_price: 0, output_price: 0 }];
    models.loaded = true;
    const { getByTestId } = render(Composer);
    const send = getByTestId('send') as HTMLButtonElement;
    expect(send.disabled).toBe(true);
    await fireEvent.input(getByTestId('composer'), { target: { value: 'hello' } });
    expect(send.disabled).toBe(false);
  });
});
