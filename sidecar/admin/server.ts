// The admin listener: liveness, readiness with reasons, and metrics. It never shows a key.
// Three fixed GET routes on node:http: express cost ~3 MB of the sidecar's resident memory for them
// (docs/benchmarks.md).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';

export interface Readiness {
  ready: boolean;
  /** Why not ready, in words an operator can act on; never a secret. */
  reasons: string[];
}

export interface AdminServerOptions {
  readiness(): Readiness;
  status(): Record<string, unknown>;
  metrics?(req: IncomingMessage, res: ServerResponse): void;
}

export function createAdminServer(options: AdminServerOptions): http.Server {
  return http.createServer(
    { requestTimeout: 10_000, headersTimeout: 5_000 },
    createAdminHandler(options),
  );
}

/** The same endpoints over TLS 1.3, for kubelet probes on the pod IP. */
export function createProbeServer(
  options: AdminServerOptions,
  tls: { key: string; cert: string },
): https.Server {
  return https.createServer(
    { ...tls, minVersion: 'TLSv1.3', requestTimeout: 10_000, headersTimeout: 5_000 },
    createAdminHandler(options),
  );
}

function createAdminHandler(
  options: AdminServerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const read = req.method === 'GET' || req.method === 'HEAD';
    // As express routed them: query ignored, case-insensitive, one trailing slash allowed.
    const path = (req.url ?? '/')
      .split('?', 1)[0]!
      .toLowerCase()
      .replace(/(.)\/$/, '$1');
    if (read && path === '/healthz') return json(res, 200, { status: 'ok' });
    if (read && path === '/readyz') {
      const readiness = options.readiness();
      return json(res, readiness.ready ? 200 : 503, {
        ready: readiness.ready,
        reasons: readiness.reasons,
        ...options.status(),
      });
    }
    if (read && path === '/metrics') {
      if (options.metrics) return options.metrics(req, res);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('# no metrics exporter configured\n');
    }
    json(res, 404, { error: 'not found: try /healthz, /readyz or /metrics' });
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
