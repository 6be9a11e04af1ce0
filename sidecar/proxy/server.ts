// The application-facing listener. The pipeline routes `/{provider}/...` itself: express cost
// 3-4x the CPU of a bare handler per request here (docs/benchmarks.md), and the sidecar no longer
// loads it at all. Requests the HTTP parser rejects still get a JSON error, not a bare reset.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorResponse, ProxyError } from './errors.js';

export interface ProxyServerOptions {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Time allowed for a whole request (head and body) to arrive: bounds slow clients. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
}

export function createProxyServer(options: ProxyServerOptions): http.Server {
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      keepAliveTimeout: 5_000,
      // Node checks those timeouts only this often (default 30 s): check often enough to honor them.
      connectionsCheckingInterval: Math.min(1_000, requestTimeout / 2),
    },
    // The pipeline answers every request itself; anything escaping it costs this one response only.
    (req, res) => void options.handle(req, res).catch(() => res.destroy()),
  );
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) =>
    onClientError(error, socket),
  );
  return server;
}

/** Requests Node's parser refuses (smuggling, oversized headers, timeouts) never reach the pipeline. */
function onClientError(error: Error & { code?: string }, socket: Socket): void {
  // As Node's own default: answer unless a response already started on this socket.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const refusal =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new ProxyError('invalid_request', 'request headers are too large', {}, 431)
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ProxyError('invalid_request', 'request did not arrive in time', {}, 408)
        : new ProxyError('invalid_request', 'malformed HTTP request');
  const response = errorResponse(refusal, undefined);
  const head = [`HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? 'Error'}`];
  for (const [name, value] of Object.entries(response.headers)) head.push(`${name}: ${value}`);
  head.push(`content-length: ${Buffer.byteLength(response.body)}`, 'connection: close');
  socket.end(`${head.join('\r\n')}\r\n\r\n${response.body}`);
}
