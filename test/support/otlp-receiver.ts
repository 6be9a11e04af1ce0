// A minimal OTLP/HTTP receiver for tests: accepts traces, metrics and logs, keeps every byte it
// was sent (decompressed), and answers success, so tests can search the exported data for leaks.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';

export interface OtlpRequest {
  path: string;
  contentType: string;
  body: Buffer;
}

/** The OTLP JSON span shape, as far as tests look at it. */
export interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
  events?: unknown[];
}

export interface OtlpMetric {
  name: string;
  unit: string;
  attributes: Record<string, unknown>[];
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (`http://127.0.0.1:PORT`). */
  url: string;
  requests: OtlpRequest[];
  /** Every captured body, decoded as UTF-8 and concatenated: what a leak search runs over. */
  allText(): string;
  spans(): OtlpSpan[];
  metrics(): OtlpMetric[];
  /** Resolves once `predicate` holds, polling; rejects after `timeoutMs`. */
  waitFor(predicate: (r: OtlpReceiver) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: OtlpRequest[] = [];
  const server: Server = createServer((req, res) => {
    void readBody(req).then(
      (body) => {
        requests.push({
          path: req.url ?? '',
          contentType: String(req.headers['content-type'] ?? ''),
          body,
        });
        const json = String(req.headers['content-type'] ?? '').includes('json');
        res.writeHead(200, {
          'content-type': json ? 'application/json' : 'application/x-protobuf',
        });
        res.end(json ? '{}' : undefined);
      },
      () => {
        res.writeHead(400);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const jsonBodies = (suffix: string): unknown[] =>
    requests
      .filter((r) => r.path.endsWith(suffix) && r.contentType.includes('json'))
      .map((r) => JSON.parse(r.body.toString('utf8')) as unknown);

  const receiver: OtlpReceiver = {
    url: `http://127.0.0.1:${port}`,
    requests,
    allText: () => requests.map((r) => r.body.toString('utf8')).join('\n'),
    spans: () => jsonBodies('/v1/traces').flatMap(spansOf),
    metrics: () => jsonBodies('/v1/metrics').flatMap(metricsOf),
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(receiver)) {
        if (Date.now() > deadline) throw new Error('OTLP receiver: condition not met in time');
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return receiver;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const encoding = String(req.headers['content-encoding'] ?? '');
      try {
        resolve(
          encoding === 'gzip' ? gunzipSync(raw) : encoding === 'deflate' ? inflateSync(raw) : raw,
        );
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

type KeyValue = { key: string; value: Record<string, unknown> };

/** OTLP JSON AnyValue to a plain value. */
function plain(value: Record<string, unknown> | undefined): unknown {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return value.doubleValue;
  if ('boolValue' in value) return value.boolValue;
  if ('arrayValue' in value) {
    const values = (value.arrayValue as { values?: Record<string, unknown>[] }).values ?? [];
    return values.map(plain);
  }
  return value;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, plain(kv.value)]));
}

function spansOf(payload: unknown): OtlpSpan[] {
  const p = payload as {
    resourceSpans?: { scopeSpans?: { spans?: (OtlpSpan & { attributes?: KeyValue[] })[] }[] }[];
  };
  return (p.resourceSpans ?? []).flatMap((rs) =>
    (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        ...s,
        attributes: attributesOf(s.attributes as unknown as KeyValue[]),
      })),
    ),
  );
}

function metricsOf(payload: unknown): OtlpMetric[] {
  type Point = { attributes?: KeyValue[] };
  type Metric = { name: string; unit?: string } & Record<
    string,
    { dataPoints?: Point[] } | unknown
  >;
  const p = payload as { resourceMetrics?: { scopeMetrics?: { metrics?: Metric[] }[] }[] };
  return (p.resourceMetrics ?? []).flatMap((rm) =>
    (rm.scopeMetrics ?? []).flatMap((sm) =>
      (sm.metrics ?? []).map((m) => {
        const data = (m.histogram ?? m.sum ?? m.gauge ?? {}) as { dataPoints?: Point[] };
        return {
          name: m.name,
          unit: m.unit ?? '',
          attributes: (data.dataPoints ?? []).map((d) => attributesOf(d.attributes)),
        };
      }),
    ),
  );
}
