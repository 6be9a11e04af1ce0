// The only module that sends requests to providers: one prepared request upstream, handing back
// the response head and the body as it arrives (metering reads it as it streams).
//
// It dispatches through undici's Agent rather than node:http's ClientRequest or http-proxy-3's
// `web()`: the sidecar reads, checks and rewrites the body before forwarding and relays the
// response itself, so none of http-proxy's passes apply, and undici's handler API costs ~20 µs less
// CPU per request than a ClientRequest with its IncomingMessage stream (docs/benchmarks.md,
// "seventh pass").
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

// undici parses HTTP/1.1 with llhttp compiled to WebAssembly. V8 first compiles it with Liftoff,
// then recompiles it with TurboFan once it is hot: a transient ~30 MB at the first connections,
// which alone took the sidecar's peak RSS from 78 to 108 MB. Liftoff's code parses these short
// heads at no measurable cost per request (docs/benchmarks.md, "eighth pass"). The sidecar runs no
// other WebAssembly, and the flag must be set before undici compiles llhttp on its first connect.
setFlagsFromString('--liftoff-only');

// The Agent alone: undici's index also loads fetch, WebSocket, caches and mocks (110 modules
// where the dispatcher needs 24, ~4 MB of RSS). The path is pinned by the exact undici version in
// package.json, and forward.test.ts and the footprint test fail if it moves.
const Agent = createRequire(import.meta.url)(
  'undici/lib/dispatcher/agent.js',
) as typeof UndiciAgent;

export interface UpstreamRequest {
  /** Full upstream URL: the provider's baseURL plus the endpoint path and query. */
  url: URL;
  /** The complete outgoing header set; `host` and the framing are added by the client. */
  headers: Record<string, string>;
  body: Buffer;
  /** Longest wait for the response head, and longest silence inside its body. */
  timeoutMs: number;
}

export type UpstreamFailure = 'timeout' | 'unavailable' | 'client_closed';

export class UpstreamError extends Error {
  constructor(
    readonly failure: UpstreamFailure,
    readonly causeCode?: string,
  ) {
    super(`upstream ${failure}${causeCode ? ` (${causeCode})` : ''}`);
  }
}

/** Where a response body goes, chunk by chunk. */
export interface BodyReader {
  data(chunk: Buffer): void;
  end(): void;
  /** The body broke off: the provider failed, went silent, or the client left. */
  error(error: UpstreamError): void;
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Hands the body to `reader`: what already arrived at once, the rest as it comes. Once only. */
  read(reader: BodyReader): void;
  /** Backpressure from the client: stop and restart reading from the provider. */
  pause(): void;
  resume(): void;
  /** Drops the body unread, closing the connection if it is still arriving. */
  discard(): void;
}

export interface Upstream {
  /**
   * POSTs the request and resolves once the response head arrives. If `client` closes before the
   * response is complete, the upstream request is aborted.
   */
  send(request: UpstreamRequest, client: ServerResponse): Promise<UpstreamResponse>;
  /** Open connections to providers, for tests that prove aborted clients leak nothing. */
  openSockets(): number;
  close(): void;
}

export interface UpstreamOptions {
  /** Connections per provider origin. */
  maxSockets?: number;
  /** Time allowed to open a connection (TCP and TLS). */
  connectTimeoutMs?: number;
}

/** The parts of a URL the dispatcher needs, read once per URL (provider URLs are cached). */
interface Target {
  origin: string;
  path: string;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function createUpstream(options: UpstreamOptions = {}): Upstream {
  const agent = new Agent({
    connections: options.maxSockets ?? 256,
    // https verifies the provider's certificate by default; nothing here turns that off.
    connect: { timeout: options.connectTimeoutMs ?? 10_000, minVersion: 'TLSv1.2' },
  });
  const targets = new WeakMap<URL, Target>();
  const targetOf = (url: URL): Target => {
    let target = targets.get(url);
    if (!target) {
      target = { origin: url.origin, path: `${url.pathname}${url.search}` };
      targets.set(url, target);
    }
    return target;
  };

  return {
    send(request, client) {
      return new Promise<UpstreamResponse>((resolve, reject) => {
        const target = targetOf(request.url);
        const exchange = new UpstreamCall(client, resolve, reject);
        agent.dispatch(
          {
            origin: target.origin,
            path: target.path,
            method: 'POST',
            headers: request.headers,
            body: request.body,
            headersTimeout: request.timeoutMs,
            bodyTimeout: request.timeoutMs,
          },
          exchange,
        );
      });
    },
    openSockets() {
      let open = 0;
      // Pools count connections; a single-connection Client says whether it has one.
      for (const stats of Object.values(agent.stats)) open += Number(stats.connected);
      return open;
    },
    close() {
      void agent.destroy();
    },
  };
}

/**
 * One request's handler: settles `send`'s promise on the response head (or a failure before it),
 * then passes the body to its reader, keeping what arrives before the reader is attached.
 */
class UpstreamCall implements Dispatcher.DispatchHandler, UpstreamResponse {
  status = 0;
  headers: IncomingHttpHeaders = {};
  private controller?: Dispatcher.DispatchController;
  private reader?: BodyReader;
  private early: Buffer[] = [];
  private ended = false;
  private failure?: UpstreamError;
  private started = false;

  constructor(
    private readonly client: ServerResponse,
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: UpstreamError) => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    const first = this.controller === undefined;
    this.controller = controller;
    if (!first) return;
    if (this.client.destroyed) controller.abort(new UpstreamError('client_closed'));
    else this.client.once('close', this.onClientClose);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
  ): void {
    // 1xx heads are informational; the real one follows.
    if (status < 200) return;
    this.status = status;
    this.headers = headers;
    this.started = true;
    this.resolve(this);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.reader) this.reader.data(chunk);
    else this.early.push(chunk);
  }

  onResponseEnd(): void {
    this.ended = true;
    this.client.off('close', this.onClientClose);
    this.reader?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.client.off('close', this.onClientClose);
    const failure = classify(error, this.client);
    if (!this.started) {
      this.reject(failure);
      return;
    }
    this.failure = failure;
    this.reader?.error(failure);
  }

  read(reader: BodyReader): void {
    this.reader = reader;
    for (const chunk of this.early) reader.data(chunk);
    this.early = [];
    if (this.ended) reader.end();
    else if (this.failure) reader.error(this.failure);
  }

  pause(): void {
    this.controller?.pause();
  }

  resume(): void {
    this.controller?.resume();
  }

  discard(): void {
    this.early = [];
    this.reader = { data() {}, end() {}, error() {} };
    if (!this.ended && !this.failure) this.controller?.abort(new UpstreamError('unavailable'));
  }

  private readonly onClientClose = (): void => {
    // A client that leaves before the answer is complete aborts the upstream request.
    if (!this.client.writableFinished) this.controller?.abort(new UpstreamError('client_closed'));
  };
}

function classify(error: Error & { code?: string }, client: ServerResponse): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error.code !== undefined && TIMEOUT_CODES.has(error.code))
    return new UpstreamError('timeout');
  if (client.destroyed && !client.writableFinished) {
    return new UpstreamError('client_closed', error.code);
  }
  return new UpstreamError('unavailable', error.code);
}
