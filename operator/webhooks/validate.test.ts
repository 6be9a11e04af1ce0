import { describe, expect, it } from '@jest/globals';
import { budgetTarget, regionOfSecretArn, validateLlmObject } from './validate.js';
import { testSettings } from './testdata.js';

const config = testSettings({
  aws: { region: 'us-east-1', allowedRegions: ['us-east-1', 'eu-west-1'] },
});

const policy = (spec: Record<string, unknown>) => ({
  apiVersion: 'llmproxy.io/v1alpha1',
  kind: 'LlmPolicy',
  metadata: { name: 'p', namespace: 'team-a' },
  spec: { podSelector: {}, ...spec },
});
const openai = (credentials: Record<string, unknown> = { none: {} }) => ({
  name: 'openai',
  type: 'openai',
  baseURL: 'https://api.openai.com',
  credentials,
});
const budget = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'llmproxy.io/v1alpha1',
  kind: 'LlmBudget',
  metadata: { name, namespace: 'team-a' },
  spec: { limit: '10', period: 'daily', ...spec },
});
const check = (object: unknown, budgetsInNamespace: unknown[] = []) =>
  validateLlmObject({ object, config, budgetsInNamespace });

describe('validateLlmObject: policies', () => {
  it('refuses a secret ARN in a region the operator is not configured for', () => {
    const verdict = check(
      policy({
        providers: [
          openai({
            awsSecretsManager: {
              secretId: 'arn:aws:secretsmanager:ap-south-1:123456789012:secret:openai-AbCdEf',
            },
          }),
        ],
      }),
    );
    expect(verdict.allowed).toBe(false);
    expect(verdict.message).toMatch(/region ap-south-1, which this operator is not configured for/);
  });

  it('refuses a region field that contradicts the ARN, and an explicit region outside the list', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k';
    expect(
      check(
        policy({
          providers: [openai({ awsSecretsManager: { secretId: arn, region: 'us-east-1' } })],
        }),
      ).message,
    ).toMatch(/differs from the secret ARN's region eu-west-1/);
    expect(
      check(
        policy({
          providers: [openai({ awsSecretsManager: { secretId: 'k', region: 'us-west-2' } })],
        }),
      ).allowed,
    ).toBe(false);
  });

  it('accepts secrets in allowed regions, by ARN, region field or the default region', () => {
    for (const source of [
      { secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k' },
      { secretId: 'k', region: 'eu-west-1' },
      { secretId: 'k' },
    ]) {
      expect(check(policy({ providers: [openai({ awsSecretsManager: source })] })).allowed).toBe(
        true,
      );
    }
  });

  it('warns about a wildcard allow, captured content and an expensive model without a rate limit', () => {
    const verdict = check(
      policy({
        providers: [openai()],
        models: [{ provider: 'openai', allow: ['*'] }],
        telemetry: { captureContent: true },
      }),
    );
    expect(verdict.allowed).toBe(true);
    expect(verdict.warnings).toEqual([
      expect.stringMatching(/allow "\*" grants every model of provider openai/),
      expect.stringMatching(/captureContent: true exports prompts/),
      expect.stringMatching(/provider openai allows expensive models with no rate limit \(gpt-4, /),
    ]);
  });

  it('does not warn when a rate limit covers the expensive models or they are denied', () => {
    const models = [{ provider: 'openai', allow: ['o1*', 'gpt-4o-mini'] }];
    expect(check(policy({ providers: [openai()], models })).warnings).toHaveLength(1);
    const limited = policy({
      providers: [openai()],
      models,
      rateLimits: [{ id: 'o1', provider: 'openai', model: 'o1*', requestsPerMinute: 10 }],
    });
    expect(check(limited).warnings).toEqual([]);
    const denied = policy({
      providers: [openai()],
      models: [{ provider: 'openai', allow: ['o1*'], deny: ['o1', 'o1-pro'] }],
    });
    expect(check(denied).warnings).toEqual([]);
  });

  it('parses secret ARNs of every partition', () => {
    expect(regionOfSecretArn('arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x')).toBe(
      'us-gov-west-1',
    );
    expect(regionOfSecretArn('my-secret')).toBeUndefined();
  });
});

describe('validateLlmObject: budgets', () => {
  const existing = budget('team-daily', { podSelector: { matchLabels: { app: 'chat' } } });

  it('refuses a second budget with the same selector and period, naming the first', () => {
    const verdict = check(
      budget('another', {
        podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['chat'] }] },
      }),
      [existing],
    );
    expect(verdict.allowed).toBe(false);
    expect(verdict.message).toMatch(
      /LlmBudget team-daily in this namespace already caps the same pods/,
    );
  });

  it('refuses a time zone that is not one, and accepts real ones', () => {
    const typo = check(budget('tz', { podSelector: {}, timeZone: 'Europe/Pariss' }));
    expect(typo.allowed).toBe(false);
    expect(typo.message).toMatch(/"Europe\/Pariss" is not an IANA time zone/);
    expect(check(budget('tz', { podSelector: {}, timeZone: 'Asia/Kolkata' })).allowed).toBe(true);
  });

  it('accepts another period, another selector, and an update of the budget itself', () => {
    const others = [existing];
    expect(
      check(
        budget('weekly', { podSelector: { matchLabels: { app: 'chat' } }, period: 'weekly' }),
        others,
      ).allowed,
    ).toBe(true);
    expect(
      check(budget('x', { podSelector: { matchLabels: { app: 'batch' } } }), others).allowed,
    ).toBe(true);
    expect(
      check(
        budget('team-daily', { podSelector: { matchLabels: { app: 'chat' } }, limit: '20' }),
        others,
      ).allowed,
    ).toBe(true);
  });

  it('compares policyRefs and selectors canonically', () => {
    expect(budgetTarget({ policyRef: { name: 'p' } })).toBe('policy:p');
    expect(budgetTarget({ podSelector: { matchLabels: { a: '1', b: '2' } } })).toBe(
      budgetTarget({
        podSelector: {
          matchLabels: { b: '2' },
          matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }],
        },
      }),
    );
  });

  it('never throws on objects of odd shapes', () => {
    for (const object of [
      null,
      1,
      'x',
      [],
      { kind: 'LlmPolicy' },
      { kind: 'LlmBudget', spec: 5 },
      {
        kind: 'LlmPolicy',
        spec: { providers: [null, 1, { credentials: { awsSecretsManager: 3 } }], models: [null] },
      },
    ]) {
      expect(() => check(object, [null, { spec: null }])).not.toThrow();
    }
  });
});
