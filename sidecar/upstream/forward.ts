// The only module that sends requests to providers: one prepared request upstream, handing back
// the response head and leaving the body to the caller (metering reads it as it streams).
//
// It forwards with node:http directly rather than through http-proxy-3's `web()`: the sidecar
// reads, checks and rewrites the body before forwarding and relays the response itself, so none of
// http-proxy's passes apply, and its per-request option merging, listeners and closures cost ~1/3 of
// the sidecar's CPU per request (docs/benchmarks.md, "fourth pass").
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';

export interface UpstreamRequest {
  /** Full upstream URL: the provider's baseURL plus the endpoint path and query. */
  url: URL;
  /**
   * The complete outgoing header set; nothing from the client is added to it. The framing
   * (content-length) and `host` are set on it here, so it belongs to this one request.
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
  /**
   * POSTs the request and resolves with the response once its head arrives; its body is the
   * caller's to read. If `client` closes first, the upstream request is aborted.
   */
  send(request: UpstreamRequest, client: ServerResponse): Promise<IncomingMessage>;
  /** Open sockets per origin, for tests that prove aborted clients leak nothing. */
  openSockets(): number;
  close(): void;
}

/** The parts of a URL node:http needs, read once per URL (provider URLs are cached and reused). */
interface Target {
  secure: boolean;
  hostname: string;
  port: number;
  path: string;
  host: string;
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
  const targets = new WeakMap<URL, Target>();
  const targetOf = (url: URL): Target => {
    let target = targets.get(url);
    if (!target) {
      const secure = url.protocol === 'https:';
      target = {
        secure,
        // WHATWG URLs keep IPv6 brackets; the resolver wants the bare address.
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: Number(url.port) || (secure ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        host: url.host,
      };
      targets.set(url, target);
    }
    return target;
  };

  return {
    send(request, client) {
      return new Promise<IncomingMessage>((resolve, reject) => {
        const target = targetOf(request.url);
        const headers = request.headers;
        headers['content-length'] = String(request.body.length);
        headers.host = target.host;
        const upstreamReq = (target.secure ? https : http).request({
          method: 'POST',
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          // As a flat list node:http writes the head at once (each pair still validated) instead
          // of calling setHeader for each name first.
          headers: flatHeaders(headers),
          agent: target.secure ? httpsAgent : httpAgent,
          timeout: request.timeoutMs,
          // https verifies the provider's certificate by default; nothing here turns that off.
        });
        let timedOut = false;
        upstreamReq.on('timeout', () => {
          timedOut = true;
          upstreamReq.destroy();
        });
        // Also after the head: a mid-body failure reaches the caller through the response's
        // own error, and this listener keeps it from being an unhandled 'error'.
        upstreamReq.on('error', (error: Error & { code?: string }) => {
          if (timedOut) reject(new UpstreamError('timeout'));
          else if (client.destroyed) reject(new UpstreamError('client_closed', error.code));
          else reject(new UpstreamError('unavailable', error.code));
        });
        upstreamReq.on('response', resolve);
        // A client that leaves before the answer is complete aborts the upstream request.
        client.once('close', () => {
          if (!client.writableFinished) upstreamReq.destroy();
        });
        upstreamReq.end(request.body);
      });
    },
    openSockets() {
      const count = (sockets: NodeJS.ReadOnlyDict<unknown[]>) =>
        Object.values(sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
      return count(httpAgent.sockets) + count(httpsAgent.sockets);
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function flatHeaders(headers: Record<string, string>): string[] {
  const flat: string[] = [];
  for (const name in headers) flat.push(name, headers[name]!);
  return flat;
}
