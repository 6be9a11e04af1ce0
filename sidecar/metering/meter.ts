// Meters a response as it streams through: usage as the provider reports it, else counted from what
// was produced. Complete SSE events are forwarded at once; only an incomplete tail is ever held.
import type { ProviderType } from '../policy/compiled.js';
import { estimateOutputTokens } from './estimate.js';
import { SseSplitter, parseEvent, type SseEvent } from './sse.js';
import {
  combine,
  familyOf,
  mergeReported,
  readAnthropicUsage,
  readOpenAiUsage,
  type Family,
  type ReportedUsage,
  type Usage,
} from './usage.js';

export interface ResponseMeter {
  /** Bytes to forward now: the chunk itself, less any usage-only chunk being stripped and the held tail. */
  push(chunk: Buffer): Buffer;
  /** Any bytes still held, at the end of the stream. */
  end(): Buffer;
  /** Usage so far: exact once the provider reported it, else estimated. Callable at any time (aborts too). */
  usage(): Usage;
}

export interface MeterOptions {
  streaming: boolean;
  /** Drop the usage-only chunk the sidecar asked for (OpenAI `stream_options.include_usage`). */
  stripUsageChunk: boolean;
  requestModel: string;
  estimatedInputTokens: number;
}

const EMPTY = Buffer.alloc(0);
/** Non-streaming bodies up to this size are parsed whole; larger ones keep only their end, where usage sits. */
const MAX_PARSED_BODY = 8 * 1024 * 1024;
const KEPT_TAIL = 64 * 1024;
const FINAL_RESPONSE_EVENTS = new Set([
  'response.completed',
  'response.incomplete',
  'response.failed',
]);

type Json = Record<string, unknown>;

const asRecord = (value: unknown): Json | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Json)
    : undefined;

/**
 * OpenAI streams carry usage only when asked (`stream_options.include_usage`): ask for it on chat and
 * completions streams. `clientAskedForUsage` false means the extra usage chunk must be stripped.
 * Other requests (responses API, Anthropic, non-streaming) always report usage: nothing to strip.
 */
export function prepareStreamingRequest(
  providerType: ProviderType,
  body: unknown,
): { body: unknown; clientAskedForUsage: boolean } {
  const b = asRecord(body);
  if (
    familyOf(providerType) !== 'openai' ||
    !b ||
    b.stream !== true ||
    !('messages' in b || 'prompt' in b)
  )
    return { body, clientAskedForUsage: true };
  const streamOptions = asRecord(b.stream_options);
  if (streamOptions?.include_usage === true) return { body, clientAskedForUsage: true };
  // Object.assign, not spread: a spread copy that gains a property costs ~1 µs in V8 (Node 20).
  return {
    body: Object.assign({}, b, {
      stream_options: Object.assign({}, streamOptions, { include_usage: true }),
    }),
    clientAskedForUsage: false,
  };
}

export function createResponseMeter(
  providerType: ProviderType,
  options: MeterOptions,
): ResponseMeter {
  const state = new MeterState(familyOf(providerType), options);
  return options.streaming ? streamingMeter(state, options) : bufferedMeter(state);
}

/** What has been learnt about the response so far. */
class MeterState {
  reported: ReportedUsage = {};
  exact = false;
  responseModel: string | undefined;
  textBytes = 0;
  contentEvents = 0;

  constructor(
    readonly family: Family,
    readonly options: MeterOptions,
  ) {}

  addText(value: unknown): void {
    if (typeof value !== 'string' || value.length === 0) return;
    this.textBytes += Buffer.byteLength(value);
    this.contentEvents += 1;
  }

  report(usage: ReportedUsage | undefined, final: boolean): void {
    if (!usage) return;
    this.reported = mergeReported(this.reported, usage);
    if (final) this.exact = true;
  }

  model(value: unknown): void {
    if (this.responseModel === undefined && typeof value === 'string' && value.length > 0)
      this.responseModel = value;
  }

  usage(): Usage {
    const fallback = {
      input: this.options.estimatedInputTokens,
      output: estimateOutputTokens(this.textBytes, this.contentEvents),
    };
    const usage = combine(this.family, this.reported, fallback, this.exact);
    // combine's result is fresh: extend it rather than spread it (a spread copy that gains a
    // property costs ~1 µs in V8).
    if (this.responseModel !== undefined) usage.responseModel = this.responseModel;
    return usage;
  }
}

function streamingMeter(state: MeterState, options: MeterOptions): ResponseMeter {
  const splitter = new SseSplitter();
  const strip = options.stripUsageChunk && state.family === 'openai';
  let passThrough = false;

  return {
    push(chunk) {
      if (passThrough) return chunk;
      const events = splitter.push(chunk);
      let dropped = false;
      const kept: Buffer[] = [];
      for (const event of events) {
        if (handleEvent(state, event, strip)) kept.push(event.raw);
        else dropped = true;
      }
      if (splitter.broken) {
        // Not SSE as providers write it: stop parsing and forward everything from here on.
        passThrough = true;
        return strip ? Buffer.concat([...kept, splitter.takeTail()]) : chunk;
      }
      if (!strip) return chunk;
      if (!dropped && kept.length === events.length && sameBytes(kept, chunk)) return chunk;
      return kept.length === 1 ? kept[0]! : Buffer.concat(kept);
    },
    end() {
      const tail = splitter.takeTail();
      if (tail.length === 0 || passThrough) return strip ? tail : EMPTY;
      // A stream that ended without a final blank line: its last event still counts.
      const keep = handleEvent(state, parseEvent(tail), strip);
      return strip && keep ? tail : EMPTY;
    },
    usage: () => state.usage(),
  };
}

/** True when the kept events are exactly `chunk` (nothing held, nothing dropped): forward it uncopied. */
function sameBytes(kept: Buffer[], chunk: Buffer): boolean {
  return (
    kept.length > 0 &&
    kept[0]!.buffer === chunk.buffer &&
    kept[0]!.byteOffset === chunk.byteOffset &&
    kept.reduce((n, b) => n + b.length, 0) === chunk.length
  );
}

/** Learns from one event; returns false for the usage-only chunk being stripped. */
function handleEvent(state: MeterState, event: SseEvent, strip: boolean): boolean {
  if (event.data === '' || event.data === '[DONE]') return true;
  let payload: Json | undefined;
  try {
    payload = asRecord(JSON.parse(event.data));
  } catch {
    return true; // not JSON: forward, learn nothing
  }
  if (!payload) return true;
  if (state.family === 'anthropic') {
    anthropicEvent(state, payload);
    return true;
  }
  return openAiEvent(state, payload, strip);
}

function openAiEvent(state: MeterState, payload: Json, strip: boolean): boolean {
  const type = payload.type;
  if (typeof type === 'string') {
    // responses API
    const response = asRecord(payload.response);
    if (response) state.model(response.model);
    if (FINAL_RESPONSE_EVENTS.has(type)) state.report(readOpenAiUsage(response?.usage), true);
    else if (type.endsWith('.delta')) state.addText(payload.delta);
    return true;
  }
  state.model(payload.model);
  const usage = readOpenAiUsage(payload.usage);
  state.report(usage, true);
  const choices = Array.isArray(payload.choices) ? payload.choices : [];
  for (const choice of choices) addChoiceText(state, asRecord(choice));
  return !(strip && usage && choices.length === 0);
}

function addChoiceText(state: MeterState, choice: Json | undefined): void {
  if (!choice) return;
  state.addText(choice.text);
  const delta = asRecord(choice.delta) ?? asRecord(choice.message);
  if (!delta) return;
  state.addText(delta.content);
  state.addText(delta.reasoning_content);
  state.addText(delta.refusal);
  if (Array.isArray(delta.tool_calls))
    for (const call of delta.tool_calls)
      state.addText(asRecord(asRecord(call)?.function)?.arguments);
}

function anthropicEvent(state: MeterState, payload: Json): void {
  switch (payload.type) {
    case 'message_start': {
      const message = asRecord(payload.message);
      state.model(message?.model);
      state.report(readAnthropicUsage(message?.usage), false);
      break;
    }
    case 'message_delta':
      // cumulative counts, sent once at the end of the message
      state.report(readAnthropicUsage(payload.usage), true);
      break;
    case 'content_block_delta': {
      const delta = asRecord(payload.delta);
      state.addText(delta?.text);
      state.addText(delta?.partial_json);
      state.addText(delta?.thinking);
      break;
    }
  }
}

/** Non-streaming: forward every chunk at once, keep a copy to read usage from at the end. */
function bufferedMeter(state: MeterState): ResponseMeter {
  let chunks: Buffer[] = [];
  let total = 0;
  let truncated = false;
  let learnt = false;

  const learn = (): void => {
    if (learnt) return;
    learnt = true;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks = [];
    const payload = truncated ? tailUsage(body) : parseJson(body);
    if (!payload) {
      state.textBytes = body.length; // unknown shape: count the body as produced text
      return;
    }
    state.model(payload.model);
    const usage =
      state.family === 'anthropic'
        ? readAnthropicUsage(payload.usage)
        : readOpenAiUsage(payload.usage);
    state.report(usage, usage !== undefined);
    if (state.family === 'anthropic' && Array.isArray(payload.content))
      for (const block of payload.content) state.addText(asRecord(block)?.text);
    if (Array.isArray(payload.choices))
      for (const choice of payload.choices) addChoiceText(state, asRecord(choice));
  };

  return {
    push(chunk) {
      if (learnt) return chunk;
      chunks.push(chunk);
      total += chunk.length;
      if (total > MAX_PARSED_BODY) {
        truncated = true;
        while (chunks.length > 1 && total - chunks[0]!.length >= KEPT_TAIL)
          total -= chunks.shift()!.length;
      }
      return chunk;
    },
    end() {
      learn();
      return EMPTY;
    },
    usage() {
      learn();
      return state.usage();
    },
  };
}

function parseJson(body: Buffer): Json | undefined {
  try {
    return asRecord(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}

/** Usage from the end of a body too large to parse whole: the last `"usage": {...}` object. */
function tailUsage(body: Buffer): Json | undefined {
  const text = body.toString('utf8');
  const at = text.lastIndexOf('"usage"');
  if (at < 0) return undefined;
  const open = text.indexOf('{', at);
  if (open < 0) return undefined;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}' && --depth === 0) {
      const usage = parseJson(Buffer.from(text.slice(open, i + 1)));
      return usage ? { usage } : undefined;
    }
  }
  return undefined;
}
