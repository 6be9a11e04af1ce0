// A local OpenAI- and Anthropic-compatible provider that tests control: the only fake in the suite.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
}

/** How the next requests are answered; each field overrides the normal behaviour. */
export interface Behavior {
  /** Answer with this status and an error body instead of a completion. */
  status?: number;
  /** Error body message (to prove the proxy never copies provider errors verbatim). */
  errorMessage?: string;
  /** Never answer. */
  hang?: boolean;
  /** Delay before the response head. */
  delayMs?: number;
  /** In a stream, destroy the socket after this many chunks. */
  dropAfterChunks?: number;
  /** Omit usage from responses and streams. */
  noUsage?: boolean;
  /** Number of content chunks in a stream (default 3) and delay between them. */
  chunks?: number;
  chunkDelayMs?: number;
}

export interface FakeProvider {
  url: string;
  requests: ReceivedRequest[];
  /** The key the provider accepts; requests with another key get 401. Undefined accepts any. */
  acceptKey(key: string | undefined): void;
  behave(behavior: Behavior): void;
  /** Streams the client (the proxy) abandoned before they finished. */
  abortedStreams(): number;
  openConnections(): number;
  close(): Promise<void>;
}

const USAGE = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };

export async function startFakeProvider(
  options: { port?: number; host?: string; record?: boolean } = {},
): Promise<FakeProvider> {
  const requests: ReceivedRequest[] = [];
  let behavior: Behavior = {};
  let acceptedKey: string | undefined;
  let aborted = 0;
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | undefined;
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      if (options.record !== false)
        requests.push({
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body,
        });
      void answer(req, res, body ?? {}, { ...behavior });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 30_000;

  async function answer(
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
    b: Behavior,
  ) {
    if (b.hang) return;
    if (b.delayMs) await sleep(b.delayMs);
    const anthropic = (req.url ?? '').endsWith('/messages');
    const key = anthropic
      ? req.headers['x-api-key']
      : (req.headers['api-key'] ?? bearer(req.headers.authorization));
    if (acceptedKey !== undefined && key !== acceptedKey) {
      const hint = typeof key === 'string' ? `${key.slice(0, 3)}...${key.slice(-4)}` : 'none';
      return json(
        res,
        401,
        errorBody(anthropic, 'authentication_error', `Incorrect API key provided: ${hint}`),
      );
    }
    if (b.status && b.status >= 400)
      return json(
        res,
        b.status,
        errorBody(anthropic, 'api_error', b.errorMessage ?? 'fake provider error'),
      );
    const model = typeof body.model === 'string' ? body.model : 'unknown';
    if (body.stream === true) return stream(res, req.url ?? '', model, body, b);
    return json(res, 200, completion(req.url ?? '', model, b, body));
  }

  async function stream(
    res: ServerResponse,
    path: string,
    model: string,
    body: Record<string, unknown>,
    b: Behavior,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let finished = false;
    res.on('close', () => {
      if (!finished) aborted += 1;
    });
    const events = streamEvents(path, model, body, b);
    let sent = 0;
    for (const event of events) {
      if (res.destroyed) return;
      if (b.dropAfterChunks !== undefined && sent >= b.dropAfterChunks) {
        res.socket?.destroy();
        return;
      }
      res.write(event);
      sent += 1;
      if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
    }
    finished = true;
    res.end();
  }

  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    acceptKey: (key) => (acceptedKey = key),
    behave: (next) => (behavior = next),
    abortedStreams: () => aborted,
    openConnections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function completion(
  path: string,
  model: string,
  b: Behavior,
  body: Record<string, unknown>,
): unknown {
  const usage = b.noUsage ? undefined : USAGE;
  if (path.endsWith('/messages')) {
    return {
      id: 'msg_fake',
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text: 'Hello from the fake provider.' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: b.noUsage
        ? undefined
        : {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
          },
    };
  }
  if (path.endsWith('/embeddings')) {
    const vector = [0.5, 0.25, 0.125];
    const embedding =
      body.encoding_format === 'base64'
        ? Buffer.from(new Float32Array(vector).buffer).toString('base64')
        : vector;
    return {
      object: 'list',
      model,
      data: [{ object: 'embedding', index: 0, embedding }],
      usage: b.noUsage ? undefined : { prompt_tokens: 12, total_tokens: 12 },
    };
  }
  if (path.endsWith('/responses')) {
    return {
      id: 'resp_fake',
      object: 'response',
      created_at: 1700000000,
      model,
      status: 'completed',
      output: [
        {
          type: 'message',
          id: 'msg_fake',
          status: 'completed',
          role: 'assistant',
          content: [
            { type: 'output_text', text: 'Hello from the fake provider.', annotations: [] },
          ],
        },
      ],
      usage: b.noUsage ? undefined : { input_tokens: 12, output_tokens: 7, total_tokens: 19 },
    };
  }
  if (path.endsWith('/chat/completions')) {
    return {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1700000000,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello from the fake provider.' },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage,
    };
  }
  return {
    id: 'cmpl-fake',
    object: 'text_completion',
    created: 1700000000,
    model,
    choices: [{ index: 0, text: 'Hello', finish_reason: 'stop', logprobs: null }],
    usage,
  };
}

function streamEvents(
  path: string,
  model: string,
  body: Record<string, unknown>,
  b: Behavior,
): string[] {
  const n = b.chunks ?? 3;
  const words = Array.from({ length: n }, (_, i) => `word${i} `);
  if (path.endsWith('/messages')) {
    const sse = (event: string, data: unknown) =>
      `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    return [
      sse('message_start', {
        type: 'message_start',
        message: {
          id: 'msg_fake',
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: b.noUsage ? 0 : 12, output_tokens: 1 },
        },
      }),
      sse('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
      }),
      ...words.map((w) =>
        sse('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text: w },
        }),
      ),
      sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
      sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: b.noUsage ? 0 : n },
      }),
      sse('message_stop', { type: 'message_stop' }),
    ];
  }
  if (path.endsWith('/responses')) {
    const sse = (data: Record<string, unknown>) =>
      `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`;
    const response = {
      id: 'resp_fake',
      object: 'response',
      created_at: 1700000000,
      model,
      status: 'in_progress',
      output: [],
    };
    return [
      sse({ type: 'response.created', sequence_number: 0, response }),
      ...words.map((w, i) =>
        sse({
          type: 'response.output_text.delta',
          sequence_number: i + 1,
          item_id: 'msg_fake',
          output_index: 0,
          content_index: 0,
          delta: w,
        }),
      ),
      sse({
        type: 'response.completed',
        sequence_number: n + 1,
        response: {
          ...response,
          status: 'completed',
          usage: b.noUsage
            ? undefined
            : { input_tokens: 12, output_tokens: n, total_tokens: 12 + n },
        },
      }),
    ];
  }
  const data = (d: unknown) => `data: ${JSON.stringify(d)}\n\n`;
  const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1700000000, model };
  const wantsUsage =
    (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  return [
    ...words.map((w, i) =>
      data({
        ...base,
        choices: [
          {
            index: 0,
            delta: i === 0 ? { role: 'assistant', content: w } : { content: w },
            finish_reason: null,
          },
        ],
      }),
    ),
    data({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
    ...(wantsUsage && !b.noUsage
      ? [
          data({
            ...base,
            choices: [],
            usage: { prompt_tokens: 12, completion_tokens: n, total_tokens: 12 + n },
          }),
        ]
      : []),
    'data: [DONE]\n\n',
  ];
}

function errorBody(anthropic: boolean, type: string, message: string): unknown {
  return anthropic
    ? { type: 'error', error: { type, message } }
    : { error: { message, type, param: null, code: null } };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function bearer(value: string | undefined): string | undefined {
  return value?.startsWith('Bearer ') ? value.slice(7) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
