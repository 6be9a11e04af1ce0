// The Helm chart as rendered: lint, templates with default and non-default values, the values
// schema refusing typos, the README documenting every value, the operator's config parsed by
// the operator's own parser, and every rendered object accepted by a real API server
// (server-side dry run).
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as A from '../../sidecar/telemetry/attributes.js';
import { emptyDistributionStats } from '../../operator/distribution/index.js';
import { renderOperatorMetrics } from '../../operator/metrics.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  CHART_DIR,
  TESTDATA_DIR,
  helm,
  helmOk,
  parseManifests,
  toYamlStream,
  type Manifest,
} from '../support/chart.js';

/**
 * The operator's own parser of /etc/llmproxy/config.yaml (operator/config-file.ts), loaded by
 * name so that this test states the contract even before that module lands.
 */
type ParseSettings = (document: unknown) => Record<string, Record<string, unknown>>;
async function operatorParser(): Promise<ParseSettings | undefined> {
  const specifier = '../../operator/config-file.js';
  try {
    const mod = (await import(specifier)) as { parseOperatorSettings?: ParseSettings };
    return mod.parseOperatorSettings;
  } catch {
    return undefined;
  }
}

/** The operator's builders of its webhook configurations (operator/webhooks/configuration.ts). */
interface WebhookBuilders {
  mutatingWebhookConfiguration(options: { config: unknown }): { webhooks: unknown[] };
  validatingWebhookConfiguration(options: { config: unknown }): { webhooks: unknown[] };
}
async function webhookBuilders(): Promise<WebhookBuilders | undefined> {
  const specifier = '../../operator/webhooks/configuration.js';
  try {
    return (await import(specifier)) as WebhookBuilders;
  } catch {
    return undefined;
  }
}

const CUSTOM_VALUES = path.join(TESTDATA_DIR, 'helm-values-custom.yaml');
const MONITORING = [
  '--api-versions',
  'monitoring.coreos.com/v1/PrometheusRule',
  '--api-versions',
  'monitoring.coreos.com/v1/ServiceMonitor',
];
/** Kinds whose CRDs the test control plane does not have. */
const FOREIGN_GROUPS = ['cert-manager.io/', 'monitoring.coreos.com/'];

let cp: ControlPlane;

beforeAll(async () => {
  cp = await sharedControlPlane();
});

async function render(namespace: string, args: string[] = []): Promise<Manifest[]> {
  return parseManifests(
    await helmOk(cp, ['template', 'llmproxy', CHART_DIR, '--namespace', namespace, ...args]),
  );
}

function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && (!name || m.metadata.name === name));
  if (!found) throw new Error(`no ${kind} ${name ?? ''} rendered`);
  return found;
}

// Typed views of the few fields the assertions read.
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports: { name: string; containerPort: number }[];
  securityContext: Record<string, unknown>;
  readinessProbe: { httpGet: { path: string; port: string; scheme: string } };
  livenessProbe: { httpGet: { path: string; port: string; scheme: string } };
}
interface Deployment {
  spec: {
    replicas: number;
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        serviceAccountName: string;
        automountServiceAccountToken: boolean;
        securityContext: Record<string, unknown>;
        containers: Container[];
        topologySpreadConstraints?: unknown[];
        affinity?: { podAntiAffinity?: unknown };
      };
    };
  };
}
interface Webhook {
  name: string;
  clientConfig: { service: { name: string; namespace: string; path: string; port: number } };
  failurePolicy: string;
  sideEffects: string;
  namespaceSelector: {
    matchLabels?: Record<string, string>;
    matchExpressions: { key: string; operator: string; values?: string[] }[];
  };
  matchConditions?: { expression: string }[];
  reinvocationPolicy?: string;
}

const deploymentOf = (m: Manifest[]) => find(m, 'Deployment') as unknown as Deployment;
const webhooksOf = (m: Manifest[], kind: string) =>
  (find(m, kind) as unknown as { webhooks: Webhook[] }).webhooks;
const configOf = (m: Manifest[], name: string): unknown =>
  parseYaml(
    (find(m, 'ConfigMap', name) as unknown as { data: Record<string, string> }).data[
      'config.yaml'
    ] as string,
  );

describe('helm lint', () => {
  it('passes with the default values', async () => {
    const res = await helm(cp, ['lint', '--strict', CHART_DIR]);
    expect(res.stderr + res.stdout).toContain('0 chart(s) failed');
    expect(res.code).toBe(0);
  });

  it('passes with non-default values and the optional parts on', async () => {
    const res = await helm(cp, ['lint', '--strict', CHART_DIR, '-f', CUSTOM_VALUES]);
    expect(res.code).toBe(0);
  });
});

describe('values schema', () => {
  it.each([
    ['a misspelt key', ['--set', 'operator.replcas=3'], "additional properties 'replcas'"],
    ['a misspelt section', ['--set', 'certmanager.enabled=true'], "'certmanager' not allowed"],
    ['a wrong type', ['--set', 'operator.replicas=two'], '/operator/replicas'],
    ['an unknown log level', ['--set', 'sidecar.logLevel=trace'], '/sidecar/logLevel'],
    ['a bad region', ['--set', 'aws.region=moon'], '/aws/region'],
    ['a bad Redis URL', ['--set', 'redis.url=http://cache:6379'], '/redis/url'],
    ['a number as a quantity', ['--set', 'sidecar.resources.limits.cpu=1'], 'want string'],
  ])('refuses %s at install time', async (_what, args, message) => {
    const res = await helm(cp, ['template', 'x', CHART_DIR, ...args]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("values don't meet the specifications of the schema");
    expect(res.stderr).toContain(message);
  });

  it('refuses a region outside the allowed ones, as the operator would', async () => {
    const res = await helm(cp, ['template', 'x', CHART_DIR, '--set', 'aws.region=eu-west-1']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('aws.allowedRegions must include aws.region (eu-west-1)');
  });
});

describe('README', () => {
  it('documents every value with its default', () => {
    const readme = readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
    const values = parseYaml(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const keys: string[] = [];
    const walk = (prefix: string, node: unknown): void => {
      if (node && typeof node === 'object' && !Array.isArray(node)) {
        const entries = Object.entries(node);
        if (prefix && entries.length === 0) keys.push(prefix);
        for (const [k, v] of entries) walk(prefix ? `${prefix}.${k}` : k, v);
      } else {
        keys.push(prefix);
      }
    };
    walk('', values);
    expect(keys.length).toBeGreaterThan(50);
    const row = (k: string) =>
      new RegExp(`^\\|\\s*\`${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`\\s*\\|`, 'm');
    const missing = keys.filter((k) => !row(k).test(readme));
    expect(missing).toEqual([]);
  });
});

describe('helm template with the default values', () => {
  let manifests: Manifest[];

  beforeAll(async () => {
    manifests = await render('llmproxy-system');
  });

  it('renders the operator, its access, its webhooks and no optional parts', () => {
    const kinds = manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'ClusterRole/llmproxy-admin',
        'ClusterRole/llmproxy-editor',
        'ClusterRole/llmproxy-operator',
        'ClusterRole/llmproxy-viewer',
        'ClusterRoleBinding/llmproxy-operator',
        'ConfigMap/llmproxy-operator-config',
        'ConfigMap/llmproxy-operator-dashboard',
        'Deployment/llmproxy-operator',
        'MutatingWebhookConfiguration/llmproxy',
        'NetworkPolicy/llmproxy-operator',
        'PodDisruptionBudget/llmproxy-operator',
        'Role/llmproxy-operator',
        'RoleBinding/llmproxy-operator',
        'Service/llmproxy-operator',
        'ServiceAccount/llmproxy-operator',
        'ValidatingWebhookConfiguration/llmproxy',
        'ValidatingAdmissionPolicy/llmproxy-operator-pod-updates',
        'ValidatingAdmissionPolicyBinding/llmproxy-operator-pod-updates',
      ].sort(),
    );
  });

  it('writes the configuration the operator parses, in exactly the agreed shape', async () => {
    const document = configOf(manifests, 'llmproxy-operator-config');
    expect(document).toEqual({
      operator: {
        namespace: 'llmproxy-system',
        serviceName: 'llmproxy-operator',
        distributionPort: 8443,
        webhookPort: 9443,
        certSecretName: 'llmproxy-operator-tls',
        webhookConfigurationName: 'llmproxy',
        certManager: false,
      },
      sidecar: {
        image: 'ghcr.io/llmproxy/llmproxy:0.1.0',
        imagePullPolicy: 'IfNotPresent',
        port: 8787,
        adminPort: 15020,
        probePort: 15021,
        resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '192Mi' } },
        logLevel: 'info',
        nativeSidecars: 'auto',
      },
      aws: { region: 'us-east-1', allowedRegions: ['us-east-1'] },
      redis: { url: '' },
    });
    const parse = await operatorParser();
    if (parse) expect(() => parse(document)).not.toThrow();
  });

  it('runs two restricted replicas with HTTPS probes and the downward API', () => {
    const deployment = deploymentOf(manifests);
    const pod = deployment.spec.template.spec;
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.serviceAccountName).toBe('llmproxy-operator');
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.topologySpreadConstraints).toHaveLength(2);
    expect(pod.affinity?.podAntiAffinity).toBeDefined();
    const [container] = pod.containers;
    expect(container?.image).toBe('ghcr.io/llmproxy/llmproxy:0.1.0');
    expect([...(container?.command ?? []), ...(container?.args ?? [])]).toEqual([
      'llmproxy-operator',
      '--config',
      '/etc/llmproxy/config.yaml',
      '--health-listen',
      '0.0.0.0:8081',
      '--metrics-listen',
      '0.0.0.0:9090',
    ]);
    expect(container?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(Object.fromEntries(container!.ports.map((p) => [p.name, p.containerPort]))).toEqual({
      distribution: 8443,
      webhook: 9443,
      health: 8081,
      metrics: 9090,
    });
    expect(container?.readinessProbe.httpGet).toEqual({
      path: '/readyz',
      port: 'health',
      scheme: 'HTTPS',
    });
    expect(container?.livenessProbe.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS' });
    expect(container?.env?.map((e) => e.name)).toEqual(
      expect.arrayContaining(['POD_NAME', 'POD_NAMESPACE']),
    );
    expect(deployment.spec.template.metadata.annotations['checksum/config']).toMatch(
      /^[0-9a-f]{64}$/,
    );
  });

  it('sends only opted-in pods to the injection webhook, fail-closed, never the system namespaces', () => {
    const mutating = webhooksOf(manifests, 'MutatingWebhookConfiguration');
    expect(mutating.map((w) => w.name)).toEqual([
      'inject.pods.llmproxy.io',
      'namespace-inject.pods.llmproxy.io',
    ]);
    for (const webhook of mutating) {
      expect(webhook.failurePolicy).toBe('Fail');
      expect(webhook.sideEffects).toBe('None');
      expect(webhook.reinvocationPolicy).toBe('IfNeeded');
      expect(webhook.clientConfig.service).toEqual({
        name: 'llmproxy-operator',
        namespace: 'llmproxy-system',
        path: '/mutate-pods',
        port: 9443,
      });
      expect(webhook.clientConfig).not.toHaveProperty('caBundle');
      expect(webhook.namespaceSelector.matchExpressions[0]?.values).toEqual([
        'kube-system',
        'kube-public',
        'kube-node-lease',
        'llmproxy-system',
      ]);
      expect(webhook.matchConditions?.[0]?.expression).toContain("'llmproxy.io/inject'");
    }
    expect(mutating[1]?.namespaceSelector.matchLabels).toEqual({
      'llmproxy.io/injection': 'enabled',
    });
    const validating = webhooksOf(manifests, 'ValidatingWebhookConfiguration');
    expect(validating.map((w) => w.clientConfig.service.path)).toEqual(['/validate-llmproxy']);
    expect(validating[0]?.failurePolicy).toBe('Ignore');
  });

  it.each([
    ['MutatingWebhookConfiguration', 'mutatingWebhookConfiguration'],
    ['ValidatingWebhookConfiguration', 'validatingWebhookConfiguration'],
  ] as const)('renders the %s the operator itself builds', async (kind, builder) => {
    const [parse, builders] = [await operatorParser(), await webhookBuilders()];
    if (!parse || !builders) return; // the operator's modules have not landed yet
    const config = parse(configOf(manifests, 'llmproxy-operator-config'));
    expect(webhooksOf(manifests, kind)).toEqual(builders[builder]({ config }).webhooks);
  });

  it('admits only injected pods to the distribution port', () => {
    const policy = find(manifests, 'NetworkPolicy') as unknown as {
      spec: { ingress: { ports: { port: number }[]; from?: unknown[] }[] };
    };
    const byPort = new Map(policy.spec.ingress.map((r) => [r.ports[0]?.port, r.from]));
    expect(byPort.get(8443)).toEqual([
      { namespaceSelector: {}, podSelector: { matchLabels: { 'llmproxy.io/injected': 'true' } } },
    ]);
    expect(byPort.has(9090)).toBe(false);
  });
});

describe('helm template with non-default values', () => {
  let manifests: Manifest[];

  beforeAll(async () => {
    manifests = await render('team-llm', ['-f', CUSTOM_VALUES, ...MONITORING]);
  });

  it('renders cert-manager, the PrometheusRule and ServiceMonitor, and no aggregated roles', () => {
    const kinds = new Set(manifests.map((m) => `${m.kind}/${m.metadata.name}`));
    for (const expected of [
      'Certificate/llm-operator-serving',
      'Certificate/llm-operator-ca',
      'Issuer/llm-operator-ca',
      'Issuer/llm-operator-selfsigned',
      'PrometheusRule/llm-operator',
      'ServiceMonitor/llm-operator',
    ])
      expect(kinds).toContain(expected);
    expect([...kinds].filter((k) => /-(viewer|editor|admin)$/.test(k))).toEqual([]);
  });

  it('carries every value into the operator configuration', async () => {
    const document = configOf(manifests, 'llm-operator-config');
    const parse = await operatorParser();
    const config = (parse ? parse(document) : document) as Record<string, Record<string, unknown>>;
    expect(config['operator']).toMatchObject({
      namespace: 'team-llm',
      serviceName: 'llm-operator',
      distributionPort: 18443,
      webhookPort: 19443,
      certSecretName: 'llm-operator-serving',
      webhookConfigurationName: 'llm-webhooks',
      certManager: true,
    });
    expect(config['sidecar']).toMatchObject({
      image: 'registry.example.com/platform/llmproxy-sidecar:0.1.1',
      port: 18787,
      logLevel: 'debug',
      nativeSidecars: 'never',
    });
    expect(config['aws']).toEqual({
      region: 'eu-west-1',
      allowedRegions: ['eu-west-1', 'eu-central-1'],
      rotationPeriodDays: 45,
    });
    expect(config['redis']?.['url']).toBe('redis://redis.cache.svc.cluster.local:6379/0');
  });

  it('lets cert-manager fill the CA bundles and the IRSA role reach the ServiceAccount', () => {
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      expect(find(manifests, kind, 'llm-webhooks').metadata['annotations']).toEqual({
        'cert-manager.io/inject-ca-from': 'team-llm/llm-operator-serving',
      });
    }
    expect(find(manifests, 'ServiceAccount').metadata['annotations']).toEqual({
      'example.com/owner': 'platform',
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/llmproxy-operator',
    });
    const container = deploymentOf(manifests).spec.template.spec.containers[0];
    expect(container?.image).toBe(
      'registry.example.com/platform/llmproxy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
    expect(container?.env).toContainEqual({
      name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
      value: 'http://otel-collector.observability.svc:4318',
    });
  });

  it('does not let the operator write its certificate or webhooks when cert-manager does', () => {
    const role = find(manifests, 'Role') as unknown as {
      rules: { verbs: string[]; resources: string[] }[];
    };
    const secretVerbs = role.rules
      .filter((r) => r.resources.includes('secrets'))
      .flatMap((r) => r.verbs);
    expect(secretVerbs.sort()).toEqual(['get']);
  });

  it('admits the API server CIDRs to the webhook port and the monitoring namespace to metrics', () => {
    const policy = find(manifests, 'NetworkPolicy') as unknown as {
      spec: { ingress: { ports: { port: number }[]; from?: unknown[] }[] };
    };
    const byPort = new Map(policy.spec.ingress.map((r) => [r.ports[0]?.port, r.from]));
    expect(byPort.get(19443)).toEqual([
      { ipBlock: { cidr: '10.0.0.0/16' } },
      { ipBlock: { cidr: '172.20.0.0/24' } },
    ]);
    expect(byPort.get(19090)).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
  });

  it('scopes the webhooks with the extra namespace selector', () => {
    for (const webhook of webhooksOf(manifests, 'MutatingWebhookConfiguration')) {
      expect(webhook.namespaceSelector.matchExpressions).toEqual([
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', 'monitoring', 'team-llm'],
        },
        { key: 'example.com/llm-access', operator: 'Exists' },
      ]);
    }
    for (const webhook of webhooksOf(manifests, 'ValidatingWebhookConfiguration'))
      expect(webhook.failurePolicy).toBe('Fail');
  });
});

describe('metric names in the alerts and the dashboard', () => {
  // Prometheus names of what the sidecar exports (attributes.ts), as the exporter writes them.
  const promName = (otel: string, counter: boolean) =>
    otel.replaceAll('.', '_') + (counter ? '_total' : '');
  const sidecarMetrics = [
    promName(A.METRIC_LLMPROXY_REQUESTS, true),
    promName(A.METRIC_LLMPROXY_COST, true),
    promName(A.METRIC_LLMPROXY_LIMITER_REJECTIONS, true),
    promName(A.METRIC_LLMPROXY_CREDENTIAL_REFRESHES, true),
    promName(A.METRIC_LLMPROXY_DLP_DETECTIONS, true),
    ...[
      A.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
      A.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
      A.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK,
    ].flatMap((m) => ['_bucket', '_count', '_sum'].map((s) => promName(m, false) + s)),
  ];
  const labels = [...A.METRIC_ATTRIBUTE_ALLOWLIST].map((l) => l.replaceAll('.', '_'));

  /** Metric names a PromQL text reads (identifiers followed by `{`, `[` or `)`). */
  const metricsIn = (text: string): string[] =>
    [...text.matchAll(/\b((?:llmproxy|gen_ai)_[a-z_]+)\s*[{[)]/g)].map((m) => m[1] as string);

  /** Everything the operator can export, rendered with every optional part present. */
  const operatorMetrics = renderOperatorMetrics({
    distribution: emptyDistributionStats(),
    webhooks: {
      reviews: { mutate: 0, validate: 0 },
      denied: 0,
      patched: 0,
      errors: 0,
      badRequests: 0,
    },
    ledger: { reports: 0, replays: 0, writes: 0, failures: 0, countedMicros: 0 },
    budgets: [{ namespace: 'ns', name: 'b', spentUsd: 0, limitUsd: 1 }],
    leader: true,
  });

  it('are the sidecar metrics of attributes.ts or the operator metrics the README names', async () => {
    const readme = readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
    const rule = find(await render('ns', MONITORING), 'PrometheusRule');
    const dashboard = readFileSync(path.join(CHART_DIR, 'dashboards/llmproxy.json'), 'utf8');
    const used = new Set([...metricsIn(JSON.stringify(rule)), ...metricsIn(dashboard)]);
    expect(used.size).toBeGreaterThan(8);
    for (const name of used) {
      if (sidecarMetrics.includes(name) || labels.includes(name)) continue;
      expect(name).toMatch(/^llmproxy_operator_/);
      expect(readme).toContain(`\`${name}\``);
      // ...and the operator really exports it.
      expect(operatorMetrics).toContain(`# TYPE ${name} `);
    }
    for (const label of ['llmproxy_decision', 'llmproxy_refusal_code', 'gen_ai_token_type'])
      expect(labels).toContain(label);
  });
});

describe('rendered manifests on a real API server (server-side dry run)', () => {
  const dryRun = async (manifests: Manifest[]) => {
    const applicable = manifests.filter(
      (m) => !FOREIGN_GROUPS.some((g) => m.apiVersion.startsWith(g)),
    );
    const res = await cp.kubectl(
      ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'],
      { input: toYamlStream(applicable) },
    );
    return { res, count: applicable.length };
  };

  it('accepts every object of the default install, CRDs included', async () => {
    const ns = await freshNamespace('helm-dry-default');
    const manifests = parseManifests(
      await helmOk(cp, ['template', `dry-${ns}`, CHART_DIR, '-n', ns, '--include-crds']),
    );
    expect(manifests.filter((m) => m.kind === 'CustomResourceDefinition')).toHaveLength(2);
    const { res, count } = await dryRun(manifests);
    expect(unexpectedStderr(res.stderr)).toEqual([]);
    expect(res.code).toBe(0);
    expect(res.stdout.trim().split('\n')).toHaveLength(count);
    expect(res.stdout).toContain('serverside-applied (server dry run)');
  });

  it('accepts every object of the non-default install the cluster has kinds for', async () => {
    const ns = await freshNamespace('helm-dry-custom');
    const grafana = await freshNamespace('helm-dry-grafana');
    const manifests = parseManifests(
      await helmOk(cp, [
        'template',
        `dry-${ns}`,
        CHART_DIR,
        '-n',
        ns,
        '-f',
        CUSTOM_VALUES,
        '--set',
        `monitoring.grafanaDashboard.namespace=${grafana}`,
      ]),
    );
    expect(find(manifests, 'ConfigMap', 'llm-operator-dashboard').metadata.namespace).toBe(grafana);
    const { res, count } = await dryRun(manifests);
    expect(unexpectedStderr(res.stderr)).toEqual([]);
    expect(res.code).toBe(0);
    expect(res.stdout.trim().split('\n')).toHaveLength(count);
  });
});

/**
 * stderr lines other than kubectl's notice about the last-applied-configuration annotation,
 * which appears when another test applied the same CRDs client-side: it depends on test order,
 * not on the chart.
 */
function unexpectedStderr(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.includes('last-applied-configuration'));
}
