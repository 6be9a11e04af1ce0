// Leader election on a Lease: the shell around lease.ts that talks to the API server.
// Every replica serves sidecars; only the leader runs the work that must happen once
// (status writes, ledger periods, shared-limit division).
import { errorMessage } from '../../sidecar/control/protocol.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { isConflict, Leases, microTime, type KubeClient, type Lease } from '../kube/index.js';
import { decide, leaseSpecFor, observe, releasedSpec, type Observation } from './lease.js';

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per replica; the pod name is a good choice. */
  identity?: string;
  leaseDurationMs?: number;
  /** A leader that cannot renew for this long steps down; must be below leaseDurationMs. */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log?: Logger;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
}

export interface LeaderElector {
  readonly identity: string;
  isLeader(): boolean;
  /** Stops campaigning; a leader releases the lease so a successor takes over at once. */
  stop(): Promise<void>;
}

export function startLeaderElection(options: LeaderElectionOptions): LeaderElector {
  const identity = options.identity ?? `llmproxy-operator-${randomUUID()}`;
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  if (renewDeadlineMs >= leaseDurationMs) {
    throw new Error('renewDeadlineMs must be shorter than leaseDurationMs');
  }
  const { client, namespace, name, log } = options;
  let observation: Observation | undefined;
  let leader = false;
  let lastRenewed = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const become = (next: boolean): void => {
    if (next === leader) return;
    leader = next;
    log?.info(next ? 'became leader' : 'lost leadership', { reason: name });
    try {
      if (next) options.onStartedLeading?.();
      else options.onStoppedLeading?.();
    } catch (err) {
      log?.error('leader callback failed', { reason: String(err) });
    }
  };

  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const now = Date.now();
    const current = await client.get(Leases, name, namespace);
    observation = observe(observation, current?.spec, now);
    const decision = decide(observation, identity, now);
    if (decision === 'wait') return false;
    const spec = leaseSpecFor(
      current?.spec,
      identity,
      Math.ceil(leaseDurationMs / 1000),
      microTime(now),
    );
    const written = current
      ? await client.replace(Leases, { ...current, spec })
      : await client.create(Leases, { metadata: { name, namespace }, spec } as Lease);
    observation = observe(observation, written.spec, now);
    return true;
  };

  const tick = async (): Promise<void> => {
    let held = false;
    try {
      held = await tryAcquireOrRenew();
      if (held) lastRenewed = Date.now();
    } catch (err) {
      // A conflict means someone else wrote first: not an error, just not ours this round.
      if (!isConflict(err)) {
        log?.warn('lease update failed', { reason: errorMessage(err) });
      }
    }
    if (stopped) return;
    if (held) become(true);
    else if (leader && Date.now() - lastRenewed > renewDeadlineMs) become(false);
    else if (leader && observation && observation.holder !== identity) become(false);
  };

  const loop = (): void => {
    if (stopped) return;
    inFlight = tick().finally(() => {
      if (stopped) return;
      // Jitter the period so replicas started together do not collide on every round.
      const delay = retryPeriodMs * (leader ? 1 : 1 + 0.2 * Math.random());
      timer = setTimeout(loop, delay);
    });
  };
  loop();

  return {
    identity,
    isLeader: () => leader,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
      if (!leader) return;
      try {
        const current = await client.get(Leases, name, namespace);
        if (current?.spec?.holderIdentity === identity) {
          await client.replace(Leases, {
            ...current,
            spec: releasedSpec(current.spec, microTime(Date.now())),
          });
        }
      } catch (err) {
        log?.warn('lease release failed', { reason: errorMessage(err) });
      }
      become(false);
    },
  };
}
