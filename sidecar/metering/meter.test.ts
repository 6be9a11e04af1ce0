import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createResponseMeter, prepareStreamingRequest, type MeterOptions } from './meter.js';
import type { ProviderType } from '../policy/compiled.js';

const sse = (...events: (object | string)[]): string =>
  events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('');
const named = (...events: [string, object][]): string =>
  events.map(([name, e]) => `event: ${name}\ndata: ${JSON.stringify(e)}\n\n`).join('');

const chunk = (content: string | null, extra: object = {}) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: null }],
  usage: null,
  ...extra,
});
const usageChunk = {
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  model: 'gpt-4o-2024-08-06',
  choices: [],
  usage: {
    prompt_tokens: 120,
    completion_tokens: 30,
    total_tokens: 150,
    prompt_tokens_details: { cached_tokens: 64 },
    completion_tokens_details: { reasoning_tokens: 10 },
  },
};
const OPENAI_BODY = sse(chunk(''), chunk('Hello'), chunk(' there, ünïcødé 東京'), chunk(null));
const OPENAI_STREAM = OPENAI_BODY + sse(usageChunk, '[DONE]');
const OPENAI_STRIPPED = OPENAI_BODY + sse('[DONE]');

const ANTHROPIC_STREAM = named(
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-20250514',
        content: [],
        usage: {
          input_tokens: 25,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 50,
          output_tokens: 1,
        },
      },
    },
  ],
  [
    'content_block_start',
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  ],
  ['ping', { type: 'ping' }],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi there' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  [
    'message_delta',
    { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 42 } },
  ],
  ['message_stop', { type: 'message_stop' }],
);

const RESPONSES_STREAM = named(
  [
    'response.created',
    {
      type: 'response.created',
      response: { id: 'resp_1', model: 'gpt-4.1-2025-04-14', usage: null },
    },
  ],
  ['response.output_text.delta', { type: 'response.output_text.delta', delta: 'Hello' }],
  [
    'response.completed',
    {
      type: 'response.completed',
      response: {
        id: 'resp_1',
        model: 'gpt-4.1-2025-04-14',
        usage: {
          input_tokens: 80,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: 5,
          output_tokens_details: { reasoning_tokens: 2 },
          total_tokens: 85,
        },
      },
    },
  ],
);

const opts = (over: Partial<MeterOptions> = {}): MeterOptions => ({
  streaming: true,
  stripUsageChunk: false,
  requestModel: 'gpt-4o',
  estimatedInputTokens: 500,
  ...over,
});

/** Feeds `text` split at `cuts` and returns everything forwarded, plus the meter. */
function run(type: ProviderType, text: string, cuts: number[], options: MeterOptions) {
  const meter = createResponseMeter(type, options);
  const bytes = Buffer.from(text);
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(meter.push(bytes.subarray(from, p)));
    from = p;
  }
  out.push(meter.end());
  return { forwarded: Buffer.concat(out).toString(), meter };
}

describe('prepareStreamingRequest', () => {
  it('asks an OpenAI chat stream for usage, keeping the client’s other stream options', () => {
    const r = prepareStreamingRequest('openai', {
      model: 'm',
      messages: [],
      stream: true,
      stream_options: { x: 1 },
    });
    expect(r).toEqual({
      body: {
        model: 'm',
        messages: [],
        stream: true,
        stream_options: { x: 1, include_usage: true },
      },
      clientAskedForUsage: false,
    });
  });

  it('leaves a stream alone when the client already asked for usage', () => {
    const body = { model: 'm', prompt: 'x', stream: true, stream_options: { include_usage: true } };
    expect(prepareStreamingRequest('azure-openai', body)).toEqual({
      body,
      clientAskedForUsage: true,
    });
  });

  it('leaves non-streaming, responses API and Anthropic requests alone', () => {
    for (const [type, body] of [
      ['openai', { model: 'm', messages: [] }],
      ['openai', { model: 'm', input: 'x', stream: true }],
      ['anthropic', { model: 'm', messages: [], stream: true }],
    ] as [ProviderType, object][]) {
      expect(prepareStreamingRequest(type, body)).toEqual({ body, clientAskedForUsage: true });
    }
  });
});

describe('streaming usage', () => {
  it('reads OpenAI chat usage with cached and reasoning tokens, and the response model', () => {
    const { forwarded, meter } = run('openai', OPENAI_STREAM, [], opts());
    expect(forwarded).toBe(OPENAI_STREAM);
    expect(meter.usage()).toEqual({
      inputTokens: 120,
      outputTokens: 30,
      cachedInputTokens: 64,
      reasoningTokens: 10,
      responseModel: 'gpt-4o-2024-08-06',
      estimated: false,
    });
  });

  it('strips the usage-only chunk the client did not ask for, and only that', () => {
    const { forwarded, meter } = run('openai', OPENAI_STREAM, [], opts({ stripUsageChunk: true }));
    expect(forwarded).toBe(OPENAI_STRIPPED);
    expect(meter.usage().inputTokens).toBe(120);
  });

  it('reads Anthropic usage: input plus cache reads and writes, cumulative output from message_delta', () => {
    const { forwarded, meter } = run(
      'anthropic',
      ANTHROPIC_STREAM,
      [],
      opts({ stripUsageChunk: true }),
    );
    expect(forwarded).toBe(ANTHROPIC_STREAM);
    expect(meter.usage()).toEqual({
      inputTokens: 175,
      outputTokens: 42,
      cachedInputTokens: 100,
      cacheCreationInputTokens: 50,
      responseModel: 'claude-sonnet-4-20250514',
      estimated: false,
    });
  });

  it('reads responses API usage from response.completed', () => {
    const { meter } = run('openai', RESPONSES_STREAM, [], opts());
    expect(meter.usage()).toEqual({
      inputTokens: 80,
      outputTokens: 5,
      cachedInputTokens: 0,
      reasoningTokens: 2,
      responseModel: 'gpt-4.1-2025-04-14',
      estimated: false,
    });
  });

  it('forwards complete events at once and holds back only an incomplete tail', () => {
    const meter = createResponseMeter('openai', opts({ stripUsageChunk: true }));
    const first = sse(chunk('Hel'));
    const second = sse(chunk('lo'));
    const out = meter.push(Buffer.from(first + second.slice(0, 10)));
    expect(out.toString()).toBe(first);
    expect(meter.push(Buffer.from(second.slice(10))).toString()).toBe(second);
  });

  it('handles CRLF event terminators', () => {
    const crlf = OPENAI_STREAM.replace(/\n/g, '\r\n');
    const { forwarded, meter } = run('openai', crlf, [7, 300], opts({ stripUsageChunk: true }));
    expect(forwarded).toBe(OPENAI_STRIPPED.replace(/\n/g, '\r\n'));
    expect(meter.usage().estimated).toBe(false);
  });
});

describe('streams that end early or report nothing', () => {
  it('meters a stream the client abandoned mid-way: estimated from what was produced', () => {
    const cut = OPENAI_STREAM.indexOf('ünïcødé');
    const meter = createResponseMeter('openai', opts());
    meter.push(Buffer.from(OPENAI_STREAM.slice(0, cut)));
    const usage = meter.usage();
    expect(usage).toMatchObject({ inputTokens: 500, estimated: true });
    expect(usage.outputTokens).toBeGreaterThanOrEqual(1);
  });

  it('keeps Anthropic’s exact input when the stream is abandoned before message_delta', () => {
    const cut = ANTHROPIC_STREAM.indexOf('event: message_delta');
    const meter = createResponseMeter('anthropic', opts());
    meter.push(Buffer.from(ANTHROPIC_STREAM.slice(0, cut)));
    expect(meter.usage()).toMatchObject({ inputTokens: 175, outputTokens: 2, estimated: true });
  });

  it('estimates a usage-less stream (a server that ignores include_usage)', () => {
    const { forwarded, meter } = run(
      'openai-compatible',
      OPENAI_STRIPPED,
      [],
      opts({ stripUsageChunk: true }),
    );
    expect(forwarded).toBe(OPENAI_STRIPPED);
    const usage = meter.usage();
    expect(usage.estimated).toBe(true);
    expect(usage.inputTokens).toBe(500);
    expect(usage.outputTokens).toBe(Math.ceil(Buffer.byteLength('Hello there, ünïcødé 東京') / 4));
  });

  it('meters the last event of a stream that ends without a blank line', () => {
    const text = OPENAI_BODY + `data: ${JSON.stringify(usageChunk)}`;
    const { forwarded, meter } = run('openai', text, [], opts({ stripUsageChunk: false }));
    expect(forwarded).toBe(text);
    expect(meter.usage().estimated).toBe(false);
  });

  it('passes an event too large to be SSE through untouched and stops parsing', () => {
    const huge = 'data: ' + 'x'.repeat(1024 * 1024 + 10);
    const { forwarded, meter } = run(
      'openai',
      huge + '\n\n' + OPENAI_STREAM,
      [1024 * 1024 + 8],
      opts({ stripUsageChunk: true }),
    );
    expect(forwarded).toBe(huge + '\n\n' + OPENAI_STREAM);
    expect(meter.usage().estimated).toBe(true);
  });
});

describe('chunking invariants', () => {
  const cases: [string, ProviderType, string, string, boolean][] = [
    ['OpenAI, stripped', 'openai', OPENAI_STREAM, OPENAI_STRIPPED, true],
    ['OpenAI, kept', 'openai', OPENAI_STREAM, OPENAI_STREAM, false],
    ['Anthropic', 'anthropic', ANTHROPIC_STREAM, ANTHROPIC_STREAM, false],
    ['responses API', 'openai', RESPONSES_STREAM, RESPONSES_STREAM, true],
  ];

  it.each(cases)(
    '%s: a split at every byte boundary forwards the same bytes and meters the same usage',
    (_n, type, text, expected, strip) => {
      const whole = run(type, text, [], opts({ stripUsageChunk: strip })).meter.usage();
      const length = Buffer.byteLength(text);
      for (let cut = 1; cut < length; cut++) {
        const { forwarded, meter } = run(type, text, [cut], opts({ stripUsageChunk: strip }));
        expect(forwarded).toBe(expected);
        expect(meter.usage()).toEqual(whole);
      }
    },
  );

  it.each(cases)(
    '%s: any chunking forwards the same bytes and meters the same usage',
    (_n, type, text, expected, strip) => {
      const whole = run(type, text, [], opts({ stripUsageChunk: strip })).meter.usage();
      const length = Buffer.byteLength(text);
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: length - 1 }), { maxLength: 40 }),
          (cuts) => {
            const { forwarded, meter } = run(type, text, cuts, opts({ stripUsageChunk: strip }));
            expect(forwarded).toBe(expected);
            expect(meter.usage()).toEqual(whole);
          },
        ),
      );
    },
  );
});

describe('non-streaming usage', () => {
  const body = (o: object) => JSON.stringify(o);

  it('reads chat, embeddings and responses usage', () => {
    const cases: [object, object][] = [
      [
        {
          model: 'gpt-4o-mini-2024-07-18',
          choices: [{ message: { content: 'hi' } }],
          usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
        },
        {
          inputTokens: 9,
          outputTokens: 2,
          responseModel: 'gpt-4o-mini-2024-07-18',
          estimated: false,
        },
      ],
      [
        {
          object: 'list',
          data: [{ embedding: [0.1] }],
          model: 'text-embedding-3-small',
          usage: { prompt_tokens: 8, total_tokens: 8 },
        },
        { inputTokens: 8, outputTokens: 0, estimated: false },
      ],
      [
        {
          model: 'o3',
          output: [],
          usage: {
            input_tokens: 50,
            output_tokens: 70,
            output_tokens_details: { reasoning_tokens: 64 },
          },
        },
        { inputTokens: 50, outputTokens: 70, reasoningTokens: 64, estimated: false },
      ],
    ];
    for (const [response, usage] of cases) {
      const text = body(response);
      const { forwarded, meter } = run('openai', text, [3, 20], opts({ streaming: false }));
      expect(forwarded).toBe(text);
      expect(meter.usage()).toMatchObject(usage);
    }
  });

  it('reads Anthropic usage with cache reads and writes', () => {
    const text = body({
      model: 'claude-3-5-haiku-20241022',
      content: [{ type: 'text', text: 'ok' }],
      usage: {
        input_tokens: 10,
        output_tokens: 3,
        cache_read_input_tokens: 7,
        cache_creation_input_tokens: 0,
      },
    });
    expect(run('anthropic', text, [], opts({ streaming: false })).meter.usage()).toEqual({
      inputTokens: 17,
      outputTokens: 3,
      cachedInputTokens: 7,
      cacheCreationInputTokens: 0,
      responseModel: 'claude-3-5-haiku-20241022',
      estimated: false,
    });
  });

  it('estimates a body without usage, and a body cut short', () => {
    const text = body({ choices: [{ message: { content: 'x'.repeat(40) } }] });
    expect(
      run('openai-compatible', text, [], opts({ streaming: false })).meter.usage(),
    ).toMatchObject({
      inputTokens: 500,
      outputTokens: 10,
      estimated: true,
    });
    const meter = createResponseMeter('openai', opts({ streaming: false }));
    meter.push(Buffer.from(text.slice(0, 20)));
    expect(meter.usage()).toMatchObject({ inputTokens: 500, estimated: true });
  });

  it('finds usage at the end of a body too large to parse whole', () => {
    const big = body({
      data: [{ embedding: 'x'.repeat(9 * 1024 * 1024) }],
      usage: { prompt_tokens: 4000, total_tokens: 4000 },
    });
    const { meter } = run(
      'openai',
      big,
      [1024 * 1024, 5 * 1024 * 1024, 9 * 1024 * 1024],
      opts({ streaming: false }),
    );
    expect(meter.usage()).toMatchObject({ inputTokens: 4000, outputTokens: 0, estimated: false });
  });
});
