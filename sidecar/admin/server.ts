// The admin listener: liveness, readiness with reasons, and metrics. It never shows a key.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import express from 'express';

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
    createAdminApp(options),
  );
}

/** The same endpoints over TLS 1.3, for kubelet probes on the pod IP. */
export function createProbeServer(
  options: AdminServerOptions,
  tls: { key: string; cert: string },
): https.Server {
  return https.createServer(
    { ...tls, minVersion: 'TLSv1.3', requestTimeout: 10_000, headersTimeout: 5_000 },
    createAdminApp(options),
  );
}

function createAdminApp(options: AdminServerOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const readiness = options.readiness();
    res
      .status(readiness.ready ? 200 : 503)
      .json({ ready: readiness.ready, reasons: readiness.reasons, ...options.status() });
  });
  app.get('/metrics', (req, res) => {
    if (options.metrics) options.metrics(req, res);
    else res.type('text/plain').send('# no metrics exporter configured\n');
  });
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found: try /healthz, /readyz or /metrics' });
  });
  return app;
}
