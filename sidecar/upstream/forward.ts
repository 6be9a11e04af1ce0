// The only module that imports http-proxy-3: sends one prepared request upstream and hands back
// the response head, leaving the body to the caller (metering reads it as it streams).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';

export interface UpstreamRequest {
  /** Full upstream URL: the provider's baseURL plus the endpoint path and query. */
  url: URL;
  /**
   * The complete outgoing header set; nothing from the client is added to it. The framing
   * (content-length) is set on it here, so it belongs to this one request.
   */
  headers: Record<string, string>;
  body: Buffer;
  /** Socket idle time before giving up: covers connect, time to first byte and silences. */
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

export interface Upstream {
  /** Resolves with the upstream response once its head arrives; its body is the caller's to read. */
  send(
    req: IncomingMessage,
    res: ServerResponse,
    request: UpstreamRequest,
  ): Promise<IncomingMessage>;
  /** Open sockets per origin, for tests that prove aborted clients leak nothing. */
  openSockets(): number;
  close(): void;
}

interface InFlight {
  timedOut: boolean;
  resolve(res: IncomingMessage): void;
}

export function createUpstream(options: { maxSockets?: number } = {}): Upstream {
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 256,
    maxFreeSockets: 64,
    scheduling: 'lifo' as const,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent({ ...agentOptions, minVersion: 'TLSv1.2' as const });
  const proxy = createProxyServer({ selfHandleResponse: true, ignorePath: true, xfwd: false });
  // One listener per event for all requests; per-request state hangs off the request itself.
  const pending = new WeakMap<IncomingMessage, InFlight>();
  proxy.on('proxyReq', (proxyReq, req) => {
    const state = pending.get(req);
    if (state) proxyReq.once('timeout', () => (state.timedOut = true));
  });
  proxy.on('proxyRes', (proxyRes, req) => {
    const state = pending.get(req);
    if (!state) return;
    pending.delete(req);
    state.resolve(proxyRes);
  });

  return {
    send(req, res, request) {
      return new Promise<IncomingMessage>((resolve, reject) => {
        const state: InFlight = { timedOut: false, resolve };
        pending.set(req, state);
        // http-proxy copies req.headers onto the outgoing request: swap in the curated set so no
        // client header (credentials, hop-by-hop, cookies) can reach the provider.
        request.headers['content-length'] = String(request.body.length);
        req.headers = request.headers;
        const secure = request.url.protocol === 'https:';
        proxy.web(
          req,
          res,
          {
            target: request.url,
            agent: secure ? httpsAgent : httpAgent,
            buffer: oneShot(request.body),
            proxyTimeout: request.timeoutMs,
            secure: true,
            changeOrigin: true,
          },
          (err: Error & { code?: string }) => {
            pending.delete(req);
            if (state.timedOut) reject(new UpstreamError('timeout'));
            else if (res.destroyed || req.destroyed)
              reject(new UpstreamError('client_closed', err.code));
            else reject(new UpstreamError('unavailable', err.code));
          },
        );
      });
    },
    openSockets() {
      const count = (sockets: NodeJS.ReadOnlyDict<unknown[]>) =>
        Object.values(sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
      return count(httpAgent.sockets) + count(httpsAgent.sockets);
    },
    close() {
      proxy.close();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/**
 * The prepared body in the shape http-proxy reads its `buffer` option: it only ever calls
 * `buffer.pipe(proxyReq)`. Ending the request with the whole body at once skips a Readable and
 * the pipe's listeners per request, and lets the head and body leave in one write.
 */
function oneShot(body: Buffer): Readable {
  const source = {
    pipe<T extends NodeJS.WritableStream>(destination: T): T {
      destination.end(body);
      return destination;
    },
  };
  return source as unknown as Readable;
}
