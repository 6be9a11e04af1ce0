// The operator's own endpoints for the kubelet and Prometheus: /healthz and /readyz, and
// /metrics in the Prometheus text format, each on its own HTTPS (TLS 1.3) listener.
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LedgerStats } from './budgets/index.js';
import type { DistributionStats } from './distribution/index.js';
import type { WebhookStats } from './webhooks/index.js';

export interface OperatorMetricsInput {
  distribution: DistributionStats;
  webhooks?: WebhookStats;
  ledger?: LedgerStats;
  /** Each cached LlmBudget's spend and limit, for the dashboard's "budget use" panel. */
  budgets?: Array<{ namespace: string; name: string; spentUsd: number; limitUsd: number }>;
  leader: boolean;
}

type Sample = [labels: Record<string, string>, value: number];

function family(name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) {
    const rendered = Object.entries(labels)
      .map(
        ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
      )
      .join(',');
    lines.push(`${name}${rendered ? `{${rendered}}` : ''} ${value}`);
  }
  return lines.join('\n');
}

/**
 * The operator's counters as Prometheus text (pure). Names are the ones the chart's alerts and
 * README assume: `llmproxy_operator_auth_failures_total{reason}` counts every refused sidecar,
 * including pods that asked for another pod's policy or never opted in to injection.
 */
export function renderOperatorMetrics(input: OperatorMetricsInput): string {
  const d = input.distribution;
  const authFailures: Sample[] = Object.entries(d.authFailures).map(([reason, n]) => [
    { reason },
    n,
  ]);
  authFailures.push([{ reason: 'other_pod' }, d.forbidden - d.notInjected]);
  authFailures.push([{ reason: 'not_injected' }, d.notInjected]);
  const parts = [
    family(
      'llmproxy_operator_auth_failures_total',
      'counter',
      'Sidecar requests refused by the distribution server (401/403/503), by reason.',
      authFailures,
    ),
    family('llmproxy_operator_connected_sidecars', 'gauge', 'Policy streams open now.', [
      [{}, d.streams],
    ]),
    family('llmproxy_operator_stream_connects_total', 'counter', 'Policy streams opened.', [
      [{}, d.connects],
    ]),
    family(
      'llmproxy_operator_policy_pushes_total',
      'counter',
      'Compiled policies sent to sidecars.',
      [[{}, d.policiesSent]],
    ),
    family(
      'llmproxy_operator_key_pushes_total',
      'counter',
      'Provider key sets sent to sidecars (after a policy, a rotation or a withdrawn grant).',
      [[{}, d.keysSent]],
    ),
    family('llmproxy_operator_policy_acks_total', 'counter', 'Policy versions acked or nacked.', [
      [{ result: 'ack' }, d.acks],
      [{ result: 'nack' }, d.nacks],
    ]),
    family('llmproxy_operator_throttled_total', 'counter', 'Sidecar requests refused with 429.', [
      [{}, d.throttled],
    ]),
    family(
      'llmproxy_operator_bad_requests_total',
      'counter',
      'Malformed, oversized or unknown requests to the distribution server.',
      [[{}, d.badRequests]],
    ),
    family(
      'llmproxy_operator_slow_consumers_total',
      'counter',
      'Streams cut because the sidecar did not read.',
      [[{}, d.slowConsumers]],
    ),
    family('llmproxy_operator_leader', 'gauge', '1 on the replica holding the Lease.', [
      [{}, input.leader ? 1 : 0],
    ]),
  ];
  const l = input.ledger;
  if (l) {
    parts.push(
      family(
        'llmproxy_operator_budget_reports_total',
        'counter',
        'Spend reports from sidecars; replays were resent reports already counted.',
        [
          [{ result: 'received' }, l.reports],
          [{ result: 'replay' }, l.replays],
        ],
      ),
      family(
        'llmproxy_operator_budget_ledger_writes_total',
        'counter',
        'LlmBudget status writes by this replica, and writes that failed.',
        [
          [{ result: 'ok' }, l.writes],
          [{ result: 'error' }, l.failures],
        ],
      ),
      family(
        'llmproxy_operator_budget_spend_usd_total',
        'counter',
        'Spend this replica counted into budgets, in US dollars.',
        [[{}, l.countedMicros / 1e6]],
      ),
    );
  }
  if (input.budgets && input.budgets.length > 0) {
    const label = (b: { namespace: string; name: string }) => ({
      budget_namespace: b.namespace,
      budget: b.name,
    });
    parts.push(
      family(
        'llmproxy_operator_budget_spent_usd',
        'gauge',
        'Spend this period, as the LlmBudget status holds it, in US dollars.',
        input.budgets.map((b): Sample => [label(b), b.spentUsd]),
      ),
      family(
        'llmproxy_operator_budget_limit_usd',
        'gauge',
        'The LlmBudget limit per period, in US dollars.',
        input.budgets.map((b): Sample => [label(b), b.limitUsd]),
      ),
    );
  }
  const w = input.webhooks;
  if (w) {
    parts.push(
      family('llmproxy_operator_admission_reviews_total', 'counter', 'Admission reviews.', [
        [{ webhook: 'mutate' }, w.reviews.mutate],
        [{ webhook: 'validate' }, w.reviews.validate],
      ]),
      family('llmproxy_operator_admission_denied_total', 'counter', 'Admission reviews denied.', [
        [{}, w.denied],
      ]),
      family(
        'llmproxy_operator_admission_errors_total',
        'counter',
        'Admission reviews that failed or were malformed.',
        [[{}, w.errors + w.badRequests]],
      ),
    );
  }
  return parts.join('\n') + '\n';
}

export interface Endpoint {
  readonly port: number;
  setCertificate(tls: { cert: string | Buffer; key: string | Buffer }): void;
  close(): Promise<void>;
}

export interface EndpointOptions {
  host: string;
  port: number;
  tls: { cert: string | Buffer; key: string | Buffer };
  /** GET routes: path → [status, content type, body]. */
  routes: Record<string, () => [number, string, string]>;
}

/** A small HTTPS (TLS 1.3 only) server answering GET on a few fixed paths. */
export async function startEndpoint(options: EndpointOptions): Promise<Endpoint> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    req.resume();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(options.routes, path) ? options.routes[path] : undefined;
    if (!route || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    try {
      const [status, type, body] = route();
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    } catch {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
    }
  };
  const server = https.createServer(
    { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.3' },
    handler,
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCertificate(tls) {
      server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.3' });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
