import { describe, expect, it } from '@jest/globals';
import { desiredPolicyStatus, readyTransitionEvent } from './policy-status.js';

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
