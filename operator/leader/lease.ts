// The decisions of leader election on a coordination.k8s.io Lease (pure).
//
// Expiry is judged by when *we* last saw the lease record change, on our own clock, not by
// the renewTime written by another machine: clocks of two replicas may disagree, the moment
// we observed a change may not.
import type { Lease } from '../kube/index.js';

export type LeaseSpec = NonNullable<Lease['spec']>;

export interface Observation {
  /** holder + renewTime + transitions: changes whenever the holder writes */
  record: string;
  holder: string;
  /** when we first saw this record, on our clock */
  observedAt: number;
  durationMs: number;
}

export function observe(
  previous: Observation | undefined,
  spec: LeaseSpec | undefined,
  now: number,
): Observation {
  const holder = spec?.holderIdentity ?? '';
  const record = `${holder}|${spec?.renewTime ?? ''}|${spec?.leaseTransitions ?? 0}`;
  const durationMs = (spec?.leaseDurationSeconds ?? 0) * 1000;
  if (previous && previous.record === record) return previous;
  return { record, holder, observedAt: now, durationMs };
}

export type Decision = 'renew' | 'acquire' | 'wait';

/** What to do now: renew our own lease, take a free or expired one, or wait for it. */
export function decide(observation: Observation, identity: string, now: number): Decision {
  if (observation.holder === identity) return 'renew';
  if (observation.holder === '') return 'acquire';
  return now >= observation.observedAt + observation.durationMs ? 'acquire' : 'wait';
}

/** The spec we write when we acquire or renew. */
export function leaseSpecFor(
  current: LeaseSpec | undefined,
  identity: string,
  durationSeconds: number,
  nowIso: string,
): LeaseSpec {
  const renewing = current?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds: durationSeconds,
    acquireTime: renewing ? (current?.acquireTime ?? nowIso) : nowIso,
    renewTime: nowIso,
    leaseTransitions: (current?.leaseTransitions ?? 0) + (renewing ? 0 : 1),
  };
}

/** The spec we write when we step down, so a successor need not wait out the lease. */
export function releasedSpec(current: LeaseSpec | undefined, nowIso: string): LeaseSpec {
  return {
    holderIdentity: null,
    leaseDurationSeconds: 1,
    acquireTime: null,
    renewTime: nowIso,
    leaseTransitions: current?.leaseTransitions ?? 0,
  };
}
