// Splits a server-sent-event byte stream into complete events, holding only an incomplete tail.

export interface SseEvent {
  /** The event's raw bytes, terminator included, exactly as they arrived. */
  raw: Buffer;
  /** The `event:` field, or '' when absent. */
  event: string;
  /** The `data:` lines joined with '\n'. */
  data: string;
}

const LFLF = Buffer.from('\n\n');
const CR = 13;
const TERMINATORS = [LFLF, Buffer.from('\r\n\r\n'), Buffer.from('\r\r')];
const DATA_PREFIX = Buffer.from('data: ');
const EMPTY = Buffer.alloc(0);

/** An event longer than this is not SSE from an LLM provider; the splitter gives up rather than buffer it. */
export const MAX_EVENT_BYTES = 1024 * 1024;

export class SseSplitter {
  private tail: Buffer = EMPTY;
  private overflowed = false;

  /** True once an event outgrew MAX_EVENT_BYTES: no more events will be produced. */
  get broken(): boolean {
    return this.overflowed;
  }

  /** Complete events in `chunk` (with the held tail in front). */
  push(chunk: Buffer): SseEvent[] {
    if (this.overflowed) return [];
    const buf = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    const events: SseEvent[] = [];
    let start = 0;
    // Providers terminate events with "\n\n"; look for the CR forms only when a CR is present at all.
    const crlf = buf.indexOf(CR) >= 0;
    for (;;) {
      const end = crlf ? nextBoundary(buf, start) : lfBoundary(buf, start);
      if (end < 0) break;
      events.push(parseEvent(buf.subarray(start, end)));
      start = end;
    }
    // Copy the tail: a subarray would pin the whole chunk in memory.
    this.tail = start >= buf.length ? EMPTY : Buffer.from(buf.subarray(start));
    if (this.tail.length > MAX_EVENT_BYTES) this.overflowed = true;
    return events;
  }

  /** The bytes held back (an incomplete event), handed over once. */
  takeTail(): Buffer {
    const tail = this.tail;
    this.tail = EMPTY;
    return tail;
  }
}

function lfBoundary(buf: Buffer, from: number): number {
  const at = buf.indexOf(LFLF, from);
  return at < 0 ? -1 : at + 2;
}

/** The offset just past the first event terminator at or after `from`, or -1. */
function nextBoundary(buf: Buffer, from: number): number {
  let best = -1;
  for (const t of TERMINATORS) {
    const at = buf.indexOf(t, from);
    if (at >= 0 && (best < 0 || at + t.length < best)) best = at + t.length;
  }
  return best;
}

export function parseEvent(raw: Buffer): SseEvent {
  // Fast path for the common shape: one `data: ...` line ended by "\n\n".
  const lineEnd = raw.indexOf(10);
  if (
    raw.subarray(0, DATA_PREFIX.length).equals(DATA_PREFIX) &&
    lineEnd === raw.length - 2 &&
    raw[raw.length - 1] === 10 &&
    raw.indexOf(CR) < 0
  ) {
    return { raw, event: '', data: raw.toString('utf8', DATA_PREFIX.length, lineEnd) };
  }
  let event = '';
  const data: string[] = [];
  for (const line of raw.toString('utf8').split(/\r\n|\r|\n/)) {
    if (line.startsWith('data:')) data.push(stripSpace(line.slice(5)));
    else if (line.startsWith('event:')) event = stripSpace(line.slice(6));
  }
  return { raw, event, data: data.join('\n') };
}

const stripSpace = (s: string) => (s.startsWith(' ') ? s.slice(1) : s);
