// The operator's configuration FILE (rendered by the Helm chart into /etc/llmproxy/config.yaml):
// parsed and validated once at startup into one typed object, with an error per bad field.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export const DEFAULT_CONFIG_PATH = '/etc/llmproxy/config.yaml';

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$';
/** Kubernetes resource quantities as people write them: 50m, 0.5, 64Mi, 1G. */
export const QUANTITY = '^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$';
const REGION = '^[a-z]{2}(-[a-z]+)+-\\d$';

const Port = (value: number) => Type.Integer({ minimum: 1, maximum: 65535, default: value });
const Quantity = Type.String({ pattern: QUANTITY, maxLength: 32 });
const ResourceList = Type.Object(
  { cpu: Type.Optional(Quantity), memory: Type.Optional(Quantity) },
  { additionalProperties: false },
);

export const LogLevels = ['error', 'warn', 'info', 'debug'] as const;

const OperatorSection = Type.Object(
  {
    namespace: Type.String({ pattern: DNS_LABEL, default: 'llmproxy-system' }),
    serviceName: Type.String({ pattern: DNS_LABEL, default: 'llmproxy-operator' }),
    distributionPort: Port(8443),
    webhookPort: Port(9443),
    certSecretName: Type.String({ pattern: DNS_SUBDOMAIN, default: 'llmproxy-operator-tls' }),
    webhookConfigurationName: Type.String({ pattern: DNS_SUBDOMAIN, default: 'llmproxy' }),
    certManager: Type.Boolean({ default: false }),
  },
  { additionalProperties: false, default: {} },
);

const SidecarSection = Type.Object(
  {
    image: Type.String({
      minLength: 1,
      maxLength: 512,
      default: 'ghcr.io/llmproxy/llmproxy:0.1.0',
    }),
    /**
     * Optional extension: the sidecar's command. The image's ENTRYPOINT is empty, so with the
     * injected args a command must be named; `llmproxy-sidecar` is on the image's PATH.
     */
    command: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      minItems: 1,
      maxItems: 8,
      default: ['llmproxy-sidecar'],
    }),
    imagePullPolicy: Type.Union(
      [Type.Literal('Always'), Type.Literal('IfNotPresent'), Type.Literal('Never')],
      { default: 'IfNotPresent' },
    ),
    port: Port(8787),
    adminPort: Port(15020),
    probePort: Port(15021),
    resources: Type.Object(
      { requests: Type.Optional(ResourceList), limits: Type.Optional(ResourceList) },
      {
        additionalProperties: false,
        default: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '192Mi' } },
      },
    ),
    logLevel: Type.Union(
      LogLevels.map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    /**
     * Optional extension: `auto` injects a native sidecar when the API server supports it
     * (v1.29+, from discovery), `always`/`never` force the choice.
     */
    nativeSidecars: Type.Union(
      [Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')],
      { default: 'auto' },
    ),
  },
  { additionalProperties: false, default: {} },
);

const AwsSection = Type.Object(
  {
    region: Type.String({ pattern: REGION, default: 'us-east-1' }),
    allowedRegions: Type.Array(Type.String({ pattern: REGION }), {
      maxItems: 64,
      default: ['us-east-1'],
    }),
    /**
     * Optional extension: a referenced secret whose DescribeSecret LastChangedDate is older than
     * this many days is flagged on its LlmPolicy (condition SecretRotationOverdue).
     */
    rotationPeriodDays: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  },
  { additionalProperties: false, default: {} },
);

const RedisSection = Type.Object(
  {
    url: Type.String({ maxLength: 2048, pattern: '^(|rediss?://.+)$', default: '' }),
  },
  { additionalProperties: false, default: {} },
);

export const OperatorSettingsSchema = Type.Object(
  {
    operator: OperatorSection,
    sidecar: SidecarSection,
    aws: AwsSection,
    redis: RedisSection,
  },
  { additionalProperties: false },
);

export type OperatorSettings = Static<typeof OperatorSettingsSchema>;
export type SidecarSettings = OperatorSettings['sidecar'];

export class OperatorSettingsError extends Error {
  readonly code = 'invalid_operator_settings';
  constructor(readonly problems: string[]) {
    super(`invalid operator configuration:\n  ${problems.join('\n  ')}`);
  }
}

const checker = TypeCompiler.Compile(OperatorSettingsSchema);

/** Validates an already-parsed document, filling in defaults; throws OperatorSettingsError. */
export function parseOperatorSettings(document: unknown): OperatorSettings {
  const input = document ?? {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new OperatorSettingsError([
      '(root): expected a mapping with operator, sidecar, aws, redis',
    ]);
  }
  const candidate = Value.Default(OperatorSettingsSchema, structuredClone(input)) as unknown;
  const problems = [...checker.Errors(candidate)].map(
    (e) => `${e.path.slice(1).replaceAll('/', '.') || '(root)'}: ${e.message}`,
  );
  if (problems.length > 0) throw new OperatorSettingsError(dedupe(problems));
  const config = candidate as OperatorSettings;
  problems.push(...crossFieldProblems(config));
  if (problems.length > 0) throw new OperatorSettingsError(problems);
  return config;
}

/** Reads and parses the YAML file; every problem, including a YAML syntax error, is reported. */
export function loadOperatorSettings(path: string = DEFAULT_CONFIG_PATH): OperatorSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new OperatorSettingsError([
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code})`,
    ]);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new OperatorSettingsError([`${path}: not valid YAML (${(err as Error).message})`]);
  }
  return parseOperatorSettings(document);
}

function crossFieldProblems(config: OperatorSettings): string[] {
  const problems: string[] = [];
  const { sidecar, operator, aws } = config;
  const ports = [sidecar.port, sidecar.adminPort, sidecar.probePort];
  if (new Set(ports).size !== ports.length) {
    problems.push('sidecar: port, adminPort and probePort must all differ');
  }
  if (operator.distributionPort === operator.webhookPort) {
    problems.push('operator: distributionPort and webhookPort must differ');
  }
  if (!aws.allowedRegions.includes(aws.region)) {
    problems.push(`aws.allowedRegions: must include aws.region (${aws.region})`);
  }
  return problems;
}

function dedupe(problems: string[]): string[] {
  return [...new Set(problems)];
}
