// Leader election on a real coordination.k8s.io Lease with two electors.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeClient, Leases, loadKubeConfig, microTime } from '../../operator/kube/index.js';
import { startLeaderElection, type LeaderElector } from '../../operator/leader/index.js';
import { freshNamespace, sharedControlPlane } from '../support/e2e.js';

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('leader election against a real API server', () => {
  let client: KubeClient;
  let ns: string;

  beforeAll(async () => {
    const cp = await sharedControlPlane();
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-leader');
  });
  afterAll(() => client.close());

  const elector = (identity: string, log: string[]): LeaderElector =>
    startLeaderElection({
      client,
      namespace: ns,
      name: 'llmproxy-operator',
      identity,
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 200,
      onStartedLeading: () => log.push(`${identity}:start`),
      onStoppedLeading: () => log.push(`${identity}:stop`),
    });

  it('elects exactly one leader, and hands over at once when it releases on shutdown', async () => {
    const log: string[] = [];
    const a = elector('replica-a', log);
    await waitFor(() => a.isLeader());
    const b = elector('replica-b', log);
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.isLeader()).toBe(false);

    const released = Date.now();
    await a.stop();
    expect(a.isLeader()).toBe(false);
    await waitFor(() => b.isLeader(), 3000);
    // Released, not expired: the successor does not wait out the 3 s lease.
    expect(Date.now() - released).toBeLessThan(2000);
    const lease = await client.get(Leases, 'llmproxy-operator', ns);
    expect(lease?.spec?.holderIdentity).toBe('replica-b');
    expect(lease?.spec?.leaseTransitions).toBe(2);
    await b.stop();
    expect(log).toEqual(['replica-a:start', 'replica-a:stop', 'replica-b:start', 'replica-b:stop']);
  });

  it('steps down when someone else holds the lease it thought it had', async () => {
    const log: string[] = [];
    const a = elector('replica-c', log);
    await waitFor(() => a.isLeader());
    // Another writer takes the lease (as a replica that saw ours expire would).
    const lease = await client.get(Leases, 'llmproxy-operator', ns);
    await client.replace(Leases, {
      ...lease,
      spec: { ...lease?.spec, holderIdentity: 'intruder', renewTime: microTime(Date.now()) },
    });
    await waitFor(() => !a.isLeader(), 3000);
    expect(log).toEqual(['replica-c:start', 'replica-c:stop']);
    await a.stop();
    // It did not release a lease it no longer holds.
    expect((await client.get(Leases, 'llmproxy-operator', ns))?.spec?.holderIdentity).toBe(
      'intruder',
    );
  });

  it('takes over a lease whose holder stopped renewing, once it expires', async () => {
    const lease = await client.get(Leases, 'llmproxy-operator', ns);
    expect(lease?.spec?.holderIdentity).toBe('intruder');
    const log: string[] = [];
    const started = Date.now();
    const d = elector('replica-d', log);
    await waitFor(() => d.isLeader(), 8000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    await d.stop();
  });
});
