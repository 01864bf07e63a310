import { cleanup, fireEvent, render, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import ImageStep from '../src/components/images/ImageStep.svelte';
import type { ToolStep } from '../src/lib/api/types';
import { downloadUrl, imageIdOf, operationLabel, parseMapping } from '../src/lib/images';
import { imageMode } from '../src/lib/stores/images.svelte';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  imageMode.on = false;
  imageMode.target = null;
});

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

const STEP: ToolStep = {
  id: 'img_1',
  name: 'generate_image',
  arguments: '{"prompt": "a fox"}',
  output: 'Made image id abc123',
  attachments: [
    { id: 'abc123', filename: 'image-abc123.png', media_type: 'image/png', kind: 'image', size: 10, url: '/api/images/abc123/content' },
    // never shown: a picture Parley did not serve
    { id: 'x', filename: 'x.png', media_type: 'image/png', kind: 'image', size: 1, url: 'https://evil.example/x.png' },
  ],
};

describe('image helpers', () => {
  it('reads ids only from Parley URLs and builds download links', () => {
    expect(imageIdOf('/api/images/abc123/content')).toBe('abc123');
    expect(imageIdOf('https://evil.example/api/images/abc/content')).toBeNull();
    expect(downloadUrl('/api/images/abc/content')).toBe('/api/images/abc/content?download=true');
    expect(operationLabel('variation')).toBe('Variation');
  });

  it('parses the admin form mapping, one field a line', () => {
    expect(parseMapping('prompt = 6.inputs.text\n\nseed=3.inputs.seed\nbroken line')).toEqual({
      prompt: '6.inputs.text',
      seed: '3.inputs.seed',
    });
  });
});

describe('ImageStep', () => {
  it('shows Parley-served pictures with their actions, and Edit targets the picture', async () => {
    const { getAllByTestId, getByTestId } = render(ImageStep, { step: STEP });
    const images = getAllByTestId('generated-image') as HTMLImageElement[];
    expect(images).toHaveLength(1);
    expect(images[0].getAttribute('src')).toBe('/api/images/abc123/content');
    expect(getByTestId('image-download').getAttribute('href')).toBe('/api/images/abc123/content?download=true');
    await fireEvent.click(getByTestId('image-edit'));
    expect(imageMode.on).toBe(true);
    expect(imageMode.target).toEqual({ id: 'abc123', url: '/api/images/abc123/content' });
  });

  it('lists the history of a picture', async () => {
    const item = (id: string, operation: string, prompt: string) => ({ id, operation, prompt, url: `/api/images/${id}/content` });
    vi.stubGlobal('fetch', vi.fn(async () => json({ items: [item('root1', 'generate', 'a fox'), item('abc123', 'edit', 'add a hat')] })));
    const { getByTestId, getAllByTestId } = render(ImageStep, { step: STEP });
    await fireEvent.click(getByTestId('image-history'));
    await waitFor(() => expect(getAllByTestId('lineage-item')).toHaveLength(2));
    expect(getByTestId('image-lineage').textContent).toContain('Original');
    expect(getByTestId('image-lineage').textContent).toContain('add a hat');
  });

  it('deletes a picture after a second click and says so', async () => {
    const fetch = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal('fetch', fetch);
    const { getByTestId, queryAllByTestId } = render(ImageStep, { step: STEP });
    await fireEvent.click(getByTestId('image-delete'));
    expect(fetch).not.toHaveBeenCalled();
    await fireEvent.click(getByTestId('image-delete-confirm'));
    await waitFor(() => expect(getByTestId('image-gone')).toBeTruthy());
    expect(queryAllByTestId('generated-image')).toHaveLength(0);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/images/abc123');
    expect(init.method).toBe('DELETE');
  });
});
