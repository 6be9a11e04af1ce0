import { describe, expect, it } from '@jest/globals';
import { SecretReadError } from '../../sidecar/secrets/index.js';
import {
  desiredPolicyStatus,
  readyTransitionEvent,
  ROTATION_CONDITION,
  rotationTransitionEvent,
  secretProblem,
  secretProblemReason,
} from './policy-status.js';

const policy = (generation: number, status?: object) => ({
  metadata: { name: 'p', namespace: 'team-a', generation },
  status,
});

describe('desiredPolicyStatus', () => {
  it('is Ready with the count of selected pods and the generation it saw', () => {
    const status = desiredPolicyStatus(policy(3), 2, '2026-01-01T00:00:00Z');
    expect(status).toMatchObject({ observedGeneration: 3, selectedPods: 2 });
    expect(status.conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Ready',
        message: 'serving 2 injected pods',
        observedGeneration: 3,
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ]);
  });

  it('says NoPodsSelected when no injected pod matches', () => {
    const ready = desiredPolicyStatus(policy(1), 0, '2026-01-01T00:00:00Z').conditions?.[0];
    expect(ready).toMatchObject({ status: 'False', reason: 'NoPodsSelected' });
  });

  it('changes nothing when nothing changed, so no write follows', () => {
    const first = desiredPolicyStatus(policy(1), 1, '2026-01-01T00:00:00Z');
    const again = desiredPolicyStatus(policy(1, first), 1, '2026-02-01T00:00:00Z');
    expect(again).toEqual(first);
  });

  it('keeps the transition time while Ready keeps its status, and other conditions', () => {
    const other = {
      type: 'SecretStale',
      status: 'True',
      reason: 'Old',
      message: '',
      lastTransitionTime: '2025-01-01T00:00:00Z',
    };
    const first = desiredPolicyStatus(policy(1), 1, '2026-01-01T00:00:00Z');
    const withOther = { ...first, conditions: [other, ...(first.conditions ?? [])] };
    const more = desiredPolicyStatus(policy(2, withOther), 5, '2026-02-01T00:00:00Z');
    expect(more.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe(
      '2026-01-01T00:00:00Z',
    );
    expect(more.conditions).toContainEqual(other);
    const none = desiredPolicyStatus(policy(2, more), 0, '2026-03-01T00:00:00Z');
    expect(none.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe(
      '2026-03-01T00:00:00Z',
    );
  });
});

describe('readyTransitionEvent', () => {
  const p = policy(1);
  const ready = desiredPolicyStatus(p, 1, '2026-01-01T00:00:00Z');
  const none = desiredPolicyStatus(p, 0, '2026-01-01T00:00:00Z');

  it('reports a change of Ready, as a Warning when it is not ready', () => {
    expect(readyTransitionEvent(p, ready, none)).toMatchObject({
      type: 'Warning',
      reason: 'NoPodsSelected',
      regarding: { kind: 'LlmPolicy', name: 'p', namespace: 'team-a' },
    });
    expect(readyTransitionEvent(p, undefined, ready)).toMatchObject({ type: 'Normal' });
  });

  it('stays quiet when only the pod count changed', () => {
    expect(readyTransitionEvent(p, ready, desiredPolicyStatus(p, 4, 'x'))).toBeUndefined();
  });
});

describe('secrets in policy status', () => {
  const withSecrets = (generation: number, status?: object) => ({
    ...policy(generation, status),
    spec: { podSelector: {} },
  });
  const period = 30;
  const now = '2026-03-01T00:00:00Z';

  it('lists each referenced secret with its last change and says when one is overdue', () => {
    const status = desiredPolicyStatus(withSecrets(1), 1, now, {
      secrets: [
        { provider: 'anthropic', secretId: 'llm/a', lastChanged: '2026-01-01T00:00:00Z' },
        { provider: 'openai', secretId: 'llm/o', lastChanged: '2026-02-20T00:00:00Z' },
      ],
      rotationPeriodDays: period,
    });
    expect(status.secrets).toEqual([
      { provider: 'anthropic', secretId: 'llm/a', lastChangedDate: '2026-01-01T00:00:00Z' },
      { provider: 'openai', secretId: 'llm/o', lastChangedDate: '2026-02-20T00:00:00Z' },
    ]);
    const overdue = status.conditions?.find((c) => c.type === ROTATION_CONDITION);
    expect(overdue).toMatchObject({ status: 'True', reason: 'RotationOverdue' });
    expect(overdue?.message).toContain('llm/a');
    expect(overdue?.message).not.toContain('llm/o');
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('is not overdue within the period, and writes nothing new from one day to the next', () => {
    const input = {
      secrets: [{ provider: 'openai', secretId: 's', lastChanged: '2026-02-20T00:00:00Z' }],
      rotationPeriodDays: period,
    };
    const first = desiredPolicyStatus(withSecrets(1), 1, now, input);
    expect(first.conditions?.find((c) => c.type === ROTATION_CONDITION)).toMatchObject({
      status: 'False',
      reason: 'RotatedRecently',
    });
    const nextDay = desiredPolicyStatus(withSecrets(1, first), 1, '2026-03-02T00:00:00Z', input);
    expect(nextDay).toEqual(first);
  });

  it.each([
    ['not_found', 'SecretNotFound'],
    ['access_denied', 'SecretAccessDenied'],
    ['no_aws_credentials', 'SecretAccessDenied'],
    ['json_key_missing', 'SecretInvalid'],
    ['unreachable', 'SecretUnavailable'],
  ] as const)('turns Ready False with a precise reason: %s → %s', (reason, expected) => {
    const status = desiredPolicyStatus(withSecrets(2), 3, now, {
      secrets: [
        {
          provider: 'openai',
          secretId: 'llm/openai',
          problem: { reason, message: 'the secret does not exist (ResourceNotFoundException)' },
        },
      ],
      rotationPeriodDays: period,
    });
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: expected, observedGeneration: 2 });
    expect(ready?.message).toContain('provider "openai", secret llm/openai');
    expect(secretProblemReason(reason)).toBe(expected);
  });

  it('keeps a date it once knew while the secret cannot be described', () => {
    const first = desiredPolicyStatus(withSecrets(1), 1, now, {
      secrets: [{ provider: 'openai', secretId: 's', lastChanged: '2026-02-20T00:00:00Z' }],
      rotationPeriodDays: period,
    });
    const blind = desiredPolicyStatus(withSecrets(1, first), 1, now, {
      secrets: [{ provider: 'openai', secretId: 's' }],
      rotationPeriodDays: period,
    });
    expect(blind).toEqual(first);
  });

  it('drops secrets and the rotation condition when the policy no longer references any', () => {
    const first = desiredPolicyStatus(withSecrets(1), 1, now, {
      secrets: [{ provider: 'openai', secretId: 's', lastChanged: '2026-02-20T00:00:00Z' }],
      rotationPeriodDays: period,
    });
    const none = desiredPolicyStatus(withSecrets(2, first), 1, now, {
      secrets: [],
      rotationPeriodDays: period,
    });
    expect(none.secrets).toBeUndefined();
    expect(none.conditions?.map((c) => c.type)).toEqual(['Ready']);
  });

  it('reports the problems that need a person, and not a blip while a value is still served', () => {
    const failure = (reason: 'not_found' | 'unreachable') => new SecretReadError(reason);
    expect(secretProblem({})).toBeUndefined();
    expect(secretProblem({ read: { usable: false } })).toBeUndefined();
    expect(
      secretProblem({ read: { usable: true, failure: failure('unreachable') } }),
    ).toBeUndefined();
    expect(secretProblem({ read: { usable: false, failure: failure('unreachable') } })).toEqual({
      reason: 'unreachable',
      message: 'AWS Secrets Manager could not be reached',
    });
    expect(secretProblem({ read: { usable: true, failure: failure('not_found') } })?.reason).toBe(
      'not_found',
    );
  });

  it('warns once when a secret becomes overdue, and tells when it was rotated', () => {
    const p = withSecrets(1);
    const fresh = desiredPolicyStatus(p, 1, now, {
      secrets: [{ provider: 'openai', secretId: 's', lastChanged: '2026-02-20T00:00:00Z' }],
      rotationPeriodDays: period,
    });
    const old = desiredPolicyStatus(p, 1, '2026-04-01T00:00:00Z', {
      secrets: [{ provider: 'openai', secretId: 's', lastChanged: '2026-02-20T00:00:00Z' }],
      rotationPeriodDays: period,
    });
    expect(rotationTransitionEvent(p, undefined, fresh)).toBeUndefined();
    expect(rotationTransitionEvent(p, fresh, old)).toMatchObject({
      type: 'Warning',
      reason: 'SecretRotationOverdue',
    });
    expect(rotationTransitionEvent(p, old, old)).toBeUndefined();
    expect(rotationTransitionEvent(p, old, fresh)).toMatchObject({
      type: 'Normal',
      reason: 'SecretRotated',
    });
  });
});
