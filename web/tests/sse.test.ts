import { describe, expect, it } from 'vitest';
import { SSEParser, readSSE } from '../src/lib/sse';

const STREAM =
  'event: start\ndata: {"a":1}\n\n' +
  ': keep-alive\n\n' +
  'event: text\ndata: {"text":"Hel"}\n\n' +
  'event: text\r\ndata: {"text":"lo\\n"}\r\n\r\n' +
  'event: multi\ndata: line1\ndata: line2\n\n' +
  'data: no event name\n\n' +
  'event: done\ndata: {"finish_reason":"stop"}\n\n';

const EXPECTED = [
  { event: 'start', data: '{"a":1}' },
  { event: 'text', data: '{"text":"Hel"}' },
  { event: 'text', data: '{"text":"lo\\n"}' },
  { event: 'multi', data: 'line1\nline2' },
  { event: 'message', data: 'no event name' },
  { event: 'done', data: '{"finish_reason":"stop"}' },
];

function strip(ms: { event: string; data: string }[]) {
  return ms.map(({ event, data }) => ({ event, data }));
}

describe('SSEParser', () => {
  it('parses a whole stream', () => {
    const p = new SSEParser();
    expect(strip([...p.feed(STREAM), ...p.end()])).toEqual(EXPECTED);
  });

  it('handles every possible split point (mid-line, mid-CRLF, mid-event)', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      const p = new SSEParser();
      const out = [...p.feed(STREAM.slice(0, i)), ...p.feed(STREAM.slice(i)), ...p.end()];
      expect(strip(out), `split at ${i}`).toEqual(EXPECTED);
    }
  });

  it('handles one character at a time', () => {
    const p = new SSEParser();
    const out = [];
    for (const ch of STREAM) out.push(...p.feed(ch));
    out.push(...p.end());
    expect(strip(out)).toEqual(EXPECTED);
  });

  it('strips only one leading space and keeps colons in data', () => {
    const p = new SSEParser();
    const out = p.feed('data:  two spaces: yes\n\n');
    expect(out[0].data).toBe(' two spaces: yes');
  });

  it('dispatches an unterminated last event at end of stream', () => {
    const p = new SSEParser();
    expect(p.feed('event: done\ndata: {}')).toEqual([]);
    expect(strip(p.end())).toEqual([{ event: 'done', data: '{}' }]);
  });

  it('reads from a byte stream split inside a multi-byte UTF-8 character', async () => {
    const bytes = new TextEncoder().encode('event: text\ndata: {"text":"héllo 🌍"}\n\n');
    const cut = bytes.indexOf(0xf0) + 2; // inside the emoji
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.slice(0, 5));
        c.enqueue(bytes.slice(5, cut));
        c.enqueue(bytes.slice(cut));
        c.close();
      },
    });
    const got = [];
    for await (const m of readSSE(body)) got.push(m);
    expect(got).toHaveLength(1);
    expect(JSON.parse(got[0].data).text).toBe('héllo 🌍');
  });
});
