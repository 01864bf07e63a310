// Web citations: "[n]" markers that cite numbered web search results become link chips
// that open the page in a new tab; anything but an http(s) URL gets no chip, and titles
// and hosts are text, never markup.
import { describe, expect, it } from 'vitest';
import type { MessageSource } from '../src/lib/api/types';
import { linkCitations, webRefs } from '../src/lib/citations';
import { webLinks } from '../src/lib/tools';

function web(ref: number | undefined, url: string, title = 'Otters'): MessageSource {
  return { kind: 'web', url, title, snippet: 's', ...(ref == null ? {} : { ref }) };
}

describe('web citations', () => {
  it('turns [n] into a chip linking the source in a new tab', () => {
    const root = document.createElement('div');
    root.innerHTML = '<p>Otters hold hands [1], in rafts [2]. Not [3].</p><pre><code>x[1]</code></pre>';
    linkCitations(root, [], webRefs([web(1, 'https://www.example.org/otters'), web(2, 'http://rafts.test/a?b=1')]));
    const chips = root.querySelectorAll<HTMLAnchorElement>('a.web-cite');
    expect(chips).toHaveLength(2);
    expect(chips[0].href).toBe('https://www.example.org/otters');
    expect(chips[0].target).toBe('_blank');
    expect(chips[0].rel).toBe('noopener noreferrer');
    expect(chips[0].textContent).toBe('example.org');
    expect(chips[0].title).toBe('[1] Otters');
    expect(chips[1].textContent).toBe('rafts.test');
    expect(root.textContent).toContain('Not [3].');
    expect(root.querySelector('code')!.textContent).toBe('x[1]');
  });

  it('gives hostile URLs no chip and hostile titles no markup', () => {
    const sources = [
      web(1, 'javascript:alert(1)'),
      web(2, 'data:text/html,<script>alert(1)</script>'),
      web(3, 'https://ok.test/', '<img src=x onerror=alert(1)>'),
    ];
    expect(webRefs(sources).map((w) => w.ref)).toEqual([3]);
    const root = document.createElement('div');
    root.textContent = 'a [1] b [2] c [3]';
    linkCitations(root, [], webRefs(sources));
    expect(root.querySelectorAll('a')).toHaveLength(1);
    expect(root.querySelector('img')).toBeNull();
    expect(root.textContent).toContain('a [1] b [2]');
  });

  it('does not put a chip inside a link the answer already has', () => {
    const root = document.createElement('div');
    root.innerHTML = '<p><a href="https://x.test/">see [1]</a></p>';
    linkCitations(root, [], webRefs([web(1, 'https://ok.test/')]));
    expect(root.querySelectorAll('a')).toHaveLength(1);
  });

  it('lists numbered sources first, in number order', () => {
    const listed = webLinks([web(undefined, 'https://page.test/'), web(2, 'https://b.test/'), web(1, 'https://a.test/')]);
    expect(listed.map((l) => [l.ref, l.host])).toEqual([[1, 'a.test'], [2, 'b.test'], [null, 'page.test']]);
  });
});
