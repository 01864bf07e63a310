// DOMPurify-based sanitizer with post-processing: safe links, click-to-load
// images, no inline styles outside KaTeX output, no ids (DOM clobbering).
import DOMPurify from 'dompurify';

let purifier: ReturnType<typeof DOMPurify> | null = null;
function getPurifier(): ReturnType<typeof DOMPurify> {
  if (!purifier) purifier = DOMPurify(window);
  return purifier;
}

const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

/** Absolute http(s)/mailto URL or null. */
export function safeHref(href: string | null | undefined): string | null {
  if (!href) return null;
  // Control characters and whitespace tricks (`java\nscript:`) make a URL unusable.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(href)) return null;
  let url: URL;
  try {
    url = new URL(href.trim());
  } catch {
    return null;
  }
  if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
  return url.href;
}

/** Absolute http(s) image URL or null (no data:, no relative paths to our own API). */
export function safeImageSrc(src: string | null | undefined): URL | null {
  const h = safeHref(src);
  if (!h) return null;
  const u = new URL(h);
  return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
}

export function imagePlaceholder(doc: Document, src: string | null, alt: string): HTMLElement {
  const u = safeImageSrc(src);
  if (!u) {
    const span = doc.createElement('span');
    span.className = 'img-blocked';
    span.textContent = alt ? `[image: ${alt}]` : '[image]';
    return span;
  }
  const btn = doc.createElement('button');
  btn.type = 'button';
  btn.className = 'img-load';
  btn.setAttribute('data-src', u.href);
  btn.setAttribute('data-alt', alt);
  btn.textContent = `Load image from ${u.host}`;
  if (alt) btn.setAttribute('title', alt);
  return btn;
}

const FORBID_TAGS = [
  'style', 'script', 'form', 'iframe', 'frame', 'frameset', 'object', 'embed', 'link', 'meta', 'base',
  'textarea', 'select', 'option', 'video', 'audio', 'source', 'track', 'picture', 'noscript', 'template',
  'foreignObject', 'use', 'image', 'animate', 'set', 'dialog',
];
const FORBID_ATTR = ['id', 'name', 'formaction', 'action', 'srcset', 'xlink:href', 'ping', 'background', 'poster'];

/** Sanitize HTML produced by the markdown renderer. Returns an HTML string. */
export function sanitizeHtml(html: string): string {
  const p = getPurifier();
  const frag = p.sanitize(html, {
    USE_PROFILES: { html: true, svg: true, mathMl: true },
    FORBID_TAGS,
    FORBID_ATTR,
    ALLOW_UNKNOWN_PROTOCOLS: false,
    RETURN_DOM_FRAGMENT: true,
  }) as DocumentFragment;
  postProcess(frag);
  const host = document.createElement('div');
  host.appendChild(frag);
  return host.innerHTML;
}

function postProcess(root: DocumentFragment): void {
  const doc = root.ownerDocument;
  for (const el of Array.from(root.querySelectorAll('*'))) {
    // No inline event handlers, whatever their casing.
    for (const attr of Array.from(el.attributes)) {
      const n = attr.name.toLowerCase();
      if (n.startsWith('on')) el.removeAttribute(attr.name);
      else if ((n === 'href' || n === 'src' || n === 'action' || n === 'data') && el.tagName.toLowerCase() !== 'a') {
        if (!(el.tagName.toLowerCase() === 'img' && n === 'src')) el.removeAttribute(attr.name);
      }
    }
    if (el.hasAttribute('style') && !el.closest('.katex, .katex-display')) el.removeAttribute('style');
  }
  for (const a of Array.from(root.querySelectorAll('a'))) {
    const href = safeHref(a.getAttribute('href'));
    if (!href) {
      const span = doc.createElement('span');
      span.className = 'link-blocked';
      while (a.firstChild) span.appendChild(a.firstChild);
      a.replaceWith(span);
      continue;
    }
    a.setAttribute('href', href);
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer');
  }
  for (const img of Array.from(root.querySelectorAll('img'))) {
    img.replaceWith(imagePlaceholder(doc, img.getAttribute('src'), img.getAttribute('alt') || ''));
  }
}
