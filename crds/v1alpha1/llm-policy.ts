// LlmPolicy: which models the selected pods may call, through which providers, how fast.
import { Type, type Static } from '@sinclair/typebox';
import {
  API_VERSION,
  Conditions,
  DNS_LABEL,
  DNS_SUBDOMAIN,
  GlobField,
  GlobList,
  LabelSelector,
  ObjectMeta,
  StringEnum,
  rules,
  type KindDefinition,
} from './common.js';

export const ProviderTypes = ['openai', 'anthropic', 'azure-openai', 'openai-compatible'] as const;

/** Go-style duration ("90s", "5m", "1h30m"); the compiler turns it into refreshIntervalSeconds. */
export const Duration = Type.String({
  maxLength: 32,
  description: 'A duration such as "90s", "5m" or "1h30m"; at least 10s.',
  ...rules(
    {
      rule: "self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$')",
      message: 'refreshInterval must be a duration such as "90s", "5m" or "1h30m"',
    },
    {
      rule: "!self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') || duration(self) >= duration('10s')",
      message: 'refreshInterval must be at least 10s',
    },
  ),
});

export const AwsSecretsManagerSource = Type.Object(
  {
    secretId: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'Secret name or full ARN.',
    }),
    region: Type.Optional(
      Type.String({
        maxLength: 32,
        pattern: '^[a-z]{2}(-[a-z]+)+-\\d$',
        description: 'e.g. eu-west-1',
      }),
    ),
    jsonKey: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'When the secret is a JSON object: the key whose value is the API key.',
      }),
    ),
    versionStage: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, default: 'AWSCURRENT' }),
    ),
    refreshInterval: Type.Optional(Duration),
    fetchFrom: Type.Optional(
      StringEnum(['operator', 'sidecar'] as const, {
        default: 'operator',
        description:
          'operator: the operator reads the secret once and pushes it to entitled pods (no AWS rights in app pods); sidecar: each sidecar reads it with the pod’s own AWS identity.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const FileSource = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'A mounted secret file holding the key; re-read when it changes.',
      ...rules({ rule: "self.startsWith('/')", message: 'credentials.file.path must be absolute' }),
    }),
  },
  { additionalProperties: false },
);

export const ProviderCredentials = Type.Object(
  {
    awsSecretsManager: Type.Optional(AwsSecretsManagerSource),
    file: Type.Optional(FileSource),
    none: Type.Optional(
      Type.Object(
        {},
        { additionalProperties: false, description: 'No key (in-cluster model servers).' },
      ),
    ),
  },
  {
    additionalProperties: false,
    ...rules({
      rule: '[has(self.awsSecretsManager), has(self.file), has(self.none)].filter(x, x).size() == 1',
      message: 'credentials need exactly one of awsSecretsManager, file or none',
    }),
  },
);

export const Provider = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: DNS_LABEL,
      description: 'The route segment: the app calls http://127.0.0.1:8787/{name}/...',
    }),
    type: StringEnum(ProviderTypes),
    baseURL: Type.String({
      minLength: 1,
      maxLength: 2048,
      ...rules({
        rule: "self.matches('^https?://[^\\\\s/?#]+([/?#]\\\\S*)?$')",
        message: 'baseURL must be an http(s) URL, e.g. https://api.openai.com',
      }),
    }),
    credentials: ProviderCredentials,
    apiVersion: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'azure-openai only: the api-version added when the client sends none.',
      }),
    ),
  },
  {
    additionalProperties: false,
    ...rules(
      {
        rule: "!has(self.apiVersion) || self.type == 'azure-openai'",
        message: 'apiVersion applies only to providers of type azure-openai',
      },
      {
        // The app's path already carries /v1 (OPENAI_BASE_URL=http://127.0.0.1:8787/openai/v1).
        rule: "!(self.type in ['openai', 'anthropic']) || self.baseURL.matches('^https?://[^/?#]+/?$')",
        message:
          "baseURL of an openai or anthropic provider is its origin, e.g. https://api.openai.com (no /v1: the app's path carries it)",
      },
    ),
  },
);

export const ModelGrant = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 63, description: 'A providers[].name.' }),
    allow: Type.Optional(
      GlobList('Models granted, as globs ("gpt-4o*"); allows from all policies add up.'),
    ),
    deny: Type.Optional(GlobList('Models refused, as globs; a deny in any policy wins.')),
    maxOutputTokens: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10000000,
        description: 'Caps max_tokens (and its variants) on the models this entry allows.',
      }),
    ),
  },
  {
    additionalProperties: false,
    ...rules(
      {
        rule: '(has(self.allow) && size(self.allow) > 0) || (has(self.deny) && size(self.deny) > 0)',
        message: 'each models entry needs allow or deny globs',
      },
      {
        rule: '!has(self.maxOutputTokens) || (has(self.allow) && size(self.allow) > 0)',
        message: 'maxOutputTokens caps allowed models, so it needs allow globs',
      },
    ),
  },
);

export const RateLimitSpec = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 63, pattern: DNS_LABEL }),
    provider: Type.Optional(
      Type.String({ minLength: 1, maxLength: 63, description: 'Only calls to this provider.' }),
    ),
    model: Type.Optional(GlobField('Only calls to models matching this glob.')),
    requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000000 })),
    tokensPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000000 })),
    maxConcurrent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
    scope: Type.Optional(
      StringEnum(['pod', 'shared'] as const, {
        default: 'pod',
        description: 'pod: each pod gets the whole limit; shared: the selected pods share it.',
      }),
    ),
  },
  {
    additionalProperties: false,
    ...rules({
      rule: 'has(self.requestsPerMinute) || has(self.tokensPerMinute) || has(self.maxConcurrent)',
      message: 'a rate limit needs requestsPerMinute, tokensPerMinute or maxConcurrent',
    }),
  },
);

export const ProtectionActions = ['block', 'redact', 'off'] as const;

export const DataProtectionSpec = Type.Object(
  {
    pii: Type.Optional(StringEnum(ProtectionActions)),
    secrets: Type.Optional(StringEnum(ProtectionActions)),
    entities: Type.Optional(
      Type.Record(Type.String(), StringEnum(ProtectionActions), {
        maxProperties: 64,
        description:
          'Per entity type (email, credit_card, aws_access_key, ...): overrides pii/secrets.',
      }),
    ),
    scanResponses: Type.Optional(Type.Boolean()),
    maxRequestBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 104857600 })),
  },
  { additionalProperties: false },
);

export const TelemetrySpec = Type.Object(
  {
    captureContent: Type.Optional(
      Type.Boolean({
        description: 'Opt in to exporting prompts and completions; any policy saying false wins.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LlmPolicySpec = Type.Object(
  {
    podSelector: LabelSelector,
    serviceAccountNames: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN }), {
        maxItems: 64,
        'x-kubernetes-list-type': 'set',
        description: 'When set, only selected pods running as one of these service accounts.',
      }),
    ),
    providers: Type.Optional(
      Type.Array(Provider, {
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    ),
    models: Type.Optional(
      Type.Array(ModelGrant, { maxItems: 64, 'x-kubernetes-list-type': 'atomic' }),
    ),
    rateLimits: Type.Optional(
      Type.Array(RateLimitSpec, {
        maxItems: 64,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['id'],
      }),
    ),
    dataProtection: Type.Optional(DataProtectionSpec),
    telemetry: Type.Optional(TelemetrySpec),
    suspend: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Emergency stop: the policy grants nothing (its denies and limits still apply).',
      }),
    ),
  },
  {
    additionalProperties: false,
    ...rules({
      rule: '!has(self.models) || self.models.all(m, has(self.providers) && self.providers.exists(p, p.name == m.provider))',
      message: 'every models[].provider must name an entry of providers',
      fieldPath: '.models',
    }),
  },
);

export const SecretStatus = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 63 }),
    secretId: Type.String({ maxLength: 2048 }),
    lastChangedDate: Type.Optional(Type.String({ format: 'date-time' })),
    lastCheckedTime: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const LlmPolicyStatus = Type.Object(
  {
    conditions: Type.Optional(Conditions),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, format: 'int64' })),
    selectedPods: Type.Optional(Type.Integer({ minimum: 0, format: 'int32' })),
    models: Type.Optional(
      Type.String({
        maxLength: 1024,
        description:
          'What the policy grants, preformatted for kubectl get (e.g. "openai: gpt-4o*").',
      }),
    ),
    secrets: Type.Optional(
      Type.Array(SecretStatus, {
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['provider'],
        description: 'Age of each referenced Secrets Manager secret (its last change).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LlmPolicySchema = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('LlmPolicy'),
    metadata: ObjectMeta,
    spec: LlmPolicySpec,
    status: Type.Optional(LlmPolicyStatus),
  },
  { additionalProperties: false },
);

export type Provider = Static<typeof Provider>;
export type ProviderCredentials = Static<typeof ProviderCredentials>;
export type ModelGrant = Static<typeof ModelGrant>;
export type RateLimitSpec = Static<typeof RateLimitSpec>;
export type DataProtectionSpec = Static<typeof DataProtectionSpec>;
export type LlmPolicySpec = Static<typeof LlmPolicySpec>;
export type LlmPolicyStatus = Static<typeof LlmPolicyStatus>;
export type LlmPolicy = Static<typeof LlmPolicySchema>;

export const LlmPolicyKind: KindDefinition = {
  kind: 'LlmPolicy',
  description:
    'LlmPolicy grants the pods it selects access to LLM models: providers, model globs, rate limits, data protection.',
  plural: 'llmpolicies',
  singular: 'llmpolicy',
  shortNames: ['llmpol'],
  schema: LlmPolicySchema,
  spec: LlmPolicySpec,
  status: LlmPolicyStatus,
  printerColumns: [
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    {
      name: 'Pods',
      type: 'integer',
      jsonPath: '.status.selectedPods',
      description: 'Pods selected',
    },
    { name: 'Models', type: 'string', jsonPath: '.status.models', description: 'Models granted' },
    { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend', priority: 1 },
    {
      name: 'Reason',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
      priority: 1,
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
