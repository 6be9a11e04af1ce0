// The admission webhook endpoint: HTTPS with TLS 1.3 only, two routes, bounded bodies, short
// deadlines. It answers from memory (handlers read informer caches), never calls the API
// server, and turns any bad input into a 4xx instead of a crash.
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../sidecar/telemetry/log.js';
import {
  BadReviewError,
  decodeReview,
  encodeReview,
  type AdmissionRequest,
  type AdmissionResponse,
} from './admission.js';
import { MUTATE_PODS_PATH, VALIDATE_PATH } from './configuration.js';

/** Object + oldObject of the largest object etcd stores (1.5 MiB each), with room to spare. */
export const MAX_REVIEW_BYTES = 6 * 1024 * 1024;

export interface WebhookServerOptions {
  host?: string;
  /** 0 picks a free port */
  port?: number;
  tls: { cert: string | Buffer; key: string | Buffer };
  log: Logger;
  mutatePod(request: AdmissionRequest): AdmissionResponse;
  validateLlmObject(request: AdmissionRequest): AdmissionResponse;
  maxBodyBytes?: number;
}

export interface WebhookStats {
  /** Reviews answered, per route. */
  reviews: Record<'mutate' | 'validate', number>;
  denied: number;
  patched: number;
  badRequests: number;
  errors: number;
}

export interface WebhookServer {
  readonly url: string;
  readonly port: number;
  stats(): WebhookStats;
  /** Swaps the serving certificate for new connections (rotation). */
  setCertificate(tls: { cert: string | Buffer; key: string | Buffer }): void;
  close(): Promise<void>;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { log } = options;
  const maxBody = options.maxBodyBytes ?? MAX_REVIEW_BYTES;
  const stats: WebhookStats = {
    reviews: { mutate: 0, validate: 0 },
    denied: 0,
    patched: 0,
    badRequests: 0,
    errors: 0,
  };
  const routes: Record<
    string,
    ['mutate' | 'validate', (r: AdmissionRequest) => AdmissionResponse]
  > = {
    [MUTATE_PODS_PATH]: ['mutate', options.mutatePod],
    [VALIDATE_PATH]: ['validate', options.validateLlmObject],
  };

  const reply = (res: http.ServerResponse, status: number, body: unknown): void => {
    if (res.headersSent) return;
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  };
  const fail = (res: http.ServerResponse, status: number, message: string): void => {
    stats.badRequests++;
    reply(res, status, { error: message });
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = routes[path];
    if (!route) return fail(res, 404, `not found: try ${MUTATE_PODS_PATH} or ${VALIDATE_PATH}`);
    if (req.method !== 'POST') return fail(res, 405, 'POST an AdmissionReview');
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
    if (type !== 'application/json') return fail(res, 415, 'expected application/json');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      fail(res, 413, 'AdmissionReview too large');
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) {
        fail(res, 413, 'AdmissionReview too large');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (size > maxBody) return;
      const [name, handler] = route;
      let request: AdmissionRequest;
      try {
        request = decodeReview(Buffer.concat(chunks));
      } catch (err) {
        return fail(res, 400, err instanceof BadReviewError ? err.message : 'bad AdmissionReview');
      }
      stats.reviews[name]++;
      let response: AdmissionResponse;
      try {
        response = handler(request);
      } catch (err) {
        // A bug, not the request's fault: refuse (the pod asked for the proxy) and say little.
        stats.errors++;
        log.error('admission handler failed', {
          route: name,
          error: err instanceof Error ? err.name : 'unknown',
        });
        response = {
          uid: request.uid,
          allowed: false,
          status: { code: 500, message: 'llmproxy: internal error in the admission webhook' },
        };
      }
      if (!response.allowed) stats.denied++;
      if (response.patch) stats.patched++;
      reply(res, 200, encodeReview(response));
    });
  };

  const server = https.createServer(
    { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.3' },
    (req, res) => {
      try {
        handle(req, res);
      } catch {
        stats.errors++;
        reply(res, 500, { error: 'internal error' });
      }
    },
  );
  // The API server gives up after timeoutSeconds (5 s): nothing is worth waiting longer for.
  server.headersTimeout = 5_000;
  server.requestTimeout = 5_000;
  server.keepAliveTimeout = 30_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('tlsClientError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  log.info('admission webhooks listening', { listen: `${host}:${port}` });

  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    stats: () => structuredClone(stats),
    setCertificate(tls) {
      server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.3' });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
