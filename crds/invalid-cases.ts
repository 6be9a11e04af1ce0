// Objects the API must refuse, each with the words a person sees. Shared by the in-process
// schema tests (crds/validate.test.ts) and the real API server test (test/e2e/crds.test.ts).
import { API_VERSION } from './v1alpha1/common.js';

type Json = Record<string, unknown>;

export interface InvalidCase {
  name: string;
  object: Json;
  /** Text our validator's problem contains (for CEL rules, the rule's message). */
  message: string;
  /** Text kubectl apply's error contains, when the API server words it differently. */
  serverMessage?: string;
}

export function validPolicy(namespace = 'default', name = 'valid'): Json {
  return {
    apiVersion: API_VERSION,
    kind: 'LlmPolicy',
    metadata: { name, namespace },
    spec: {
      podSelector: { matchLabels: { app: 'demo' } },
      providers: [
        {
          name: 'openai',
          type: 'openai',
          baseURL: 'https://api.openai.com',
          credentials: {
            awsSecretsManager: { secretId: 'llmproxy/openai', refreshInterval: '5m' },
          },
        },
      ],
      models: [{ provider: 'openai', allow: ['gpt-4o*'], maxOutputTokens: 1024 }],
      rateLimits: [{ id: 'rpm', requestsPerMinute: 60 }],
    },
  };
}

export function validBudget(namespace = 'default', name = 'valid'): Json {
  return {
    apiVersion: API_VERSION,
    kind: 'LlmBudget',
    metadata: { name, namespace },
    spec: { podSelector: {}, limit: '250.00', period: 'monthly', alertThresholds: [50, 80, 100] },
  };
}

type Spec = Record<string, unknown> & {
  providers: Json[];
  models: Json[];
  rateLimits: Json[];
};

function policyWith(name: string, edit: (spec: Spec) => void, namespace: string): Json {
  const object = validPolicy(namespace, name);
  edit(object.spec as Spec);
  return object;
}

function budgetWith(name: string, edit: (spec: Json) => void, namespace: string): Json {
  const object = validBudget(namespace, name);
  edit(object.spec as Json);
  return object;
}

const provider0 = (spec: Spec): Json => spec.providers[0] as Json;

export function invalidCases(namespace = 'default'): InvalidCase[] {
  const p = (name: string, edit: (spec: Spec) => void) => policyWith(name, edit, namespace);
  const b = (name: string, edit: (spec: Json) => void) => budgetWith(name, edit, namespace);
  return [
    {
      name: 'a models entry with neither allow nor deny',
      object: p('no-globs', (s) => (s.models = [{ provider: 'openai' }])),
      message: 'each models entry needs allow or deny globs',
    },
    {
      name: 'a malformed model glob',
      object: p('bad-glob', (s) => (s.models = [{ provider: 'openai', allow: ['gpt 4o'] }])),
      message: 'model globs may use only letters, digits',
    },
    {
      name: 'a model entry naming an unknown provider',
      object: p('unknown-provider', (s) => s.models.push({ provider: 'anthropic', allow: ['*'] })),
      message: 'every models[].provider must name an entry of providers',
    },
    {
      name: 'credentials with two sources',
      object: p('two-sources', (s) => {
        provider0(s).credentials = {
          awsSecretsManager: { secretId: 'x' },
          file: { path: '/keys/openai' },
        };
      }),
      message: 'credentials need exactly one of awsSecretsManager, file or none',
    },
    {
      name: 'credentials with no source',
      object: p('no-source', (s) => (provider0(s).credentials = {})),
      message: 'credentials need exactly one of awsSecretsManager, file or none',
    },
    {
      name: 'apiVersion on a provider that is not azure-openai',
      object: p('api-version', (s) => (provider0(s).apiVersion = '2024-10-21')),
      message: 'apiVersion applies only to providers of type azure-openai',
    },
    {
      name: 'a baseURL that is not http(s)',
      object: p('bad-url', (s) => (provider0(s).baseURL = 'ftp://example.com')),
      message: 'baseURL must be an http(s) URL',
    },
    {
      name: 'an OpenAI baseURL with the /v1 the app already sends',
      object: p('v1-url', (s) => (provider0(s).baseURL = 'https://api.openai.com/v1')),
      message: 'baseURL of an openai or anthropic provider is its origin',
    },
    {
      name: 'a refreshInterval that is not a duration',
      object: p('bad-duration', (s) => {
        provider0(s).credentials = {
          awsSecretsManager: { secretId: 'x', refreshInterval: '5 minutes' },
        };
      }),
      message: 'refreshInterval must be a duration such as',
    },
    {
      name: 'a refreshInterval under 10s',
      object: p('short-duration', (s) => {
        provider0(s).credentials = { awsSecretsManager: { secretId: 'x', refreshInterval: '5s' } };
      }),
      message: 'refreshInterval must be at least 10s',
    },
    {
      name: 'a rate limit without any rate',
      object: p('no-rate', (s) => (s.rateLimits = [{ id: 'empty' }])),
      message: 'a rate limit needs requestsPerMinute, tokensPerMinute or maxConcurrent',
    },
    {
      name: 'maxOutputTokens on a deny-only entry',
      object: p('cap-on-deny', (s) => {
        s.models = [{ provider: 'openai', deny: ['o1*'], maxOutputTokens: 10 }];
      }),
      message: 'maxOutputTokens caps allowed models, so it needs allow globs',
    },
    {
      name: 'an In selector without values',
      object: p('in-without-values', (s) => {
        s.podSelector = { matchExpressions: [{ key: 'app', operator: 'In' }] };
      }),
      message: 'operators In and NotIn need values',
    },
    {
      name: 'an unknown provider type',
      object: p('bad-type', (s) => (provider0(s).type = 'gpt')),
      message: 'must be one of openai, anthropic, azure-openai, openai-compatible',
      serverMessage: 'Unsupported value: "gpt"',
    },
    {
      name: 'two providers with the same name',
      object: p('duplicate-provider', (s) => s.providers.push({ ...provider0(s) })),
      message: 'Duplicate value',
    },
    {
      name: 'a maxRequestBytes below 1 KiB',
      object: p('tiny-body', (s) => (s.dataProtection = { maxRequestBytes: 10 })),
      message: 'spec.dataProtection.maxRequestBytes',
      serverMessage: 'should be greater than or equal to 1024',
    },
    {
      name: 'a budget with both podSelector and policyRef',
      object: b('both-targets', (s) => (s.policyRef = { name: 'demo' })),
      message: 'a budget needs exactly one of podSelector or policyRef',
    },
    {
      name: 'a budget with neither podSelector nor policyRef',
      object: b('no-target', (s) => delete s.podSelector),
      message: 'a budget needs exactly one of podSelector or policyRef',
    },
    {
      name: 'a zero limit',
      object: b('zero-limit', (s) => (s.limit = '0.00')),
      message: 'limit must be greater than zero',
    },
    {
      name: 'a limit given as a number, not a decimal string',
      object: b('float-limit', (s) => (s.limit = 250.5)),
      message: 'spec.limit: expected string',
      serverMessage: 'must be of type string',
    },
    {
      name: 'thresholds out of order',
      object: b('unordered', (s) => (s.alertThresholds = [80, 50, 100])),
      message: 'alertThresholds must be strictly ascending',
    },
    {
      name: 'a threshold over 100',
      object: b('over-100', (s) => (s.alertThresholds = [50, 120])),
      message: 'spec.alertThresholds[1]',
      serverMessage: 'should be less than or equal to 100',
    },
    {
      name: 'an unknown period',
      object: b('yearly', (s) => (s.period = 'yearly')),
      message: 'must be one of daily, weekly, monthly',
      serverMessage: 'Unsupported value: "yearly"',
    },
  ];
}
