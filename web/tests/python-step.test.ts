import { cleanup, render } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import ToolSteps from '../src/components/chat/ToolSteps.svelte';
import { pythonCode, splitAttachments } from '../src/lib/sandbox';
import type { ToolAttachment, ToolStep } from '../src/lib/api/types';

afterEach(() => cleanup());

const att = (over: Partial<ToolAttachment>): ToolAttachment => ({
  id: 'a1', filename: 'figure-1.png', media_type: 'image/png', kind: 'image', size: 2048,
  url: '/api/sandbox/outputs/a1', ...over,
});

const step = (over: Partial<ToolStep> = {}): ToolStep => ({
  id: 's1', name: 'run_python', arguments: JSON.stringify({ code: 'import pandas as pd\nprint("<b>hi</b>")' }),
  output: 'stdout:\n<b>hi</b>', is_error: false, duration_ms: 12, ...over,
});

describe('sandbox helpers', () => {
  it('reads the code argument from a JSON string or an object', () => {
    expect(pythonCode('{"code": "1+1"}')).toBe('1+1');
    expect(pythonCode({ code: 'x' })).toBe('x');
    expect(pythonCode('not json')).toBe('');
    expect(pythonCode({ code: 5 })).toBe('');
  });

  it('keeps only attachments served by the output route', () => {
    const parts = splitAttachments([
      att({}),
      att({ id: 'a2', url: 'https://evil.example/x.png' }),
      att({ id: 'a3', url: '/api/sandbox/outputs/../../api/me' }),
      att({ id: 'a4', filename: 'data.csv', media_type: 'text/csv', kind: 'file', url: '/api/sandbox/outputs/a4' }),
      att({ id: 'a5', media_type: 'image/svg+xml', url: '/api/sandbox/outputs/a5' }),
    ]);
    expect(parts.images.map((a) => a.id)).toEqual(['a1']);
    expect(parts.files.map((a) => a.id)).toEqual(['a4', 'a5']);
  });
});

describe('run_python step', () => {
  it('shows highlighted code, output as text, charts inline and files as downloads', () => {
    const files = att({ id: 'f1', filename: 'result<x>.csv', media_type: 'text/csv', kind: 'file', url: '/api/sandbox/outputs/f1' });
    const { getByTestId, getAllByTestId, container } = render(ToolSteps, { steps: [step({ attachments: [att({}), files] })] });
    const code = getByTestId('python-code');
    expect(code.querySelector('.hljs-keyword')?.textContent).toBe('import');
    expect(code.textContent).toContain('print("<b>hi</b>")');
    expect(container.querySelector('b')).toBeNull();
    expect(getByTestId('python-output').textContent).toBe('stdout:\n<b>hi</b>');
    const img = getAllByTestId('python-image')[0] as HTMLImageElement;
    expect(img.getAttribute('src')).toBe('/api/sandbox/outputs/a1');
    expect(img.getAttribute('alt')).toBe('figure-1.png');
    const link = getByTestId('python-file') as HTMLAnchorElement;
    expect(link.getAttribute('href')).toBe('/api/sandbox/outputs/f1');
    expect(link.getAttribute('download')).toBe('result<x>.csv');
    expect(link.textContent).toBe('result<x>.csv');
  });

  it('never loads an image from elsewhere and leaves other tools as they were', () => {
    const { queryAllByTestId, getAllByTestId } = render(ToolSteps, {
      steps: [
        step({ attachments: [att({ url: 'https://evil.example/track.png' })] }),
        { id: 's2', name: 'calculator', arguments: '{"expression":"1+1"}', output: '2', is_error: false, duration_ms: 1 },
      ],
    });
    expect(queryAllByTestId('python-image')).toHaveLength(0);
    expect(getAllByTestId('python-step')).toHaveLength(1);
    expect(getAllByTestId('tool-step')).toHaveLength(2);
  });
});
