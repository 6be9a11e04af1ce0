import { describe, expect, it } from '@jest/globals';
import { SseSplitter } from './sse.js';

const split = (...chunks: string[]) => {
  const s = new SseSplitter();
  const events = chunks.flatMap((c) => s.push(Buffer.from(c)));
  return { events, tail: s.takeTail().toString() };
};

describe('SSE splitter', () => {
  it('joins multi-line data, reads the event name and ignores comments', () => {
    const { events } = split(': keep-alive\nevent: message_delta\ndata: {"a":\ndata: 1}\n\n');
    expect(events.map((e) => [e.event, e.data])).toEqual([['message_delta', '{"a":\n1}']]);
  });

  it('accepts LF, CRLF and CR terminators', () => {
    const { events } = split('data: a\n\ndata: b\r\n\r\ndata: c\r\r');
    expect(events.map((e) => e.data)).toEqual(['a', 'b', 'c']);
  });

  it('holds an incomplete event until its terminator arrives, byte by byte', () => {
    const text = 'data: {"x":"ü"}\n\ndata: [DONE]\n\n';
    const s = new SseSplitter();
    const bytes = Buffer.from(text);
    const data: string[] = [];
    for (let i = 0; i < bytes.length; i++)
      for (const e of s.push(bytes.subarray(i, i + 1))) data.push(e.data);
    expect(data).toEqual(['{"x":"ü"}', '[DONE]']);
    expect(s.takeTail().length).toBe(0);
  });

  it('keeps the raw bytes of every event so they can be forwarded unchanged', () => {
    const text = 'event: x\ndata: 1\n\ndata: 2\n\n';
    const { events, tail } = split(text + 'data: 3');
    expect(events.map((e) => e.raw.toString()).join('')).toBe(text);
    expect(tail).toBe('data: 3');
  });
});
