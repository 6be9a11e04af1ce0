// operator/kube against the real API server: typed REST calls, TokenReview, Events, and the
// informer's cache, relist on 410 Gone and watchdog restart.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ConfigMaps,
  Informer,
  KubeClient,
  Pods,
  ServiceAccounts,
  loadKubeConfig,
  resourceKind,
  type ResourceKind,
  type Change,
  type KubeObject,
} from '../../operator/kube/index.js';
import { freshNamespace, sharedControlPlane } from '../support/e2e.js';

/** Creates a namespaced CRD with an open schema and waits until it is served. */
async function createTestCrd(plural: string): Promise<ResourceKind> {
  const cp = await sharedControlPlane();
  const group = 'e2e-operator.llmproxy.test';
  const kind = plural.charAt(0).toUpperCase() + plural.slice(1, -1);
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: plural.slice(0, -1), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          },
        },
      ],
    },
  };
  const res = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
  if (res.code !== 0) throw new Error(`creating CRD failed: ${res.stderr}`);
  const wait = await cp.kubectl(['wait', '--for=condition=Established', `crd/${plural}.${group}`]);
  if (wait.code !== 0) throw new Error(`CRD not established: ${wait.stderr}`);
  const resource = resourceKind({ group, version: 'v1', plural, kind, namespaced: true });
  // Established can precede the first successful list by a moment.
  for (let i = 0; i < 50; i++) {
    try {
      await client().list(resource);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return resource;
}

type ConfigMap = KubeObject & { data?: Record<string, string> };

async function waitFor(
  check: () => boolean,
  timeoutMs = 10_000,
  describe: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met in time ${describe()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let sharedClient: KubeClient | undefined;
const client = (): KubeClient => {
  if (!sharedClient) throw new Error('client not ready');
  return sharedClient;
};

describe('operator/kube against a real API server', () => {
  let client: KubeClient;
  let ns: string;

  beforeAll(async () => {
    const cp = await sharedControlPlane();
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    sharedClient = client;
    ns = await freshNamespace('operator-kube');
  });

  afterAll(() => client.close());

  it('creates, reads, lists, patches and deletes objects', async () => {
    await client.create(ConfigMaps, { metadata: { name: 'one', namespace: ns }, data: { a: '1' } });
    expect((await client.get(ConfigMaps, 'one', ns))?.data).toEqual({ a: '1' });
    expect(await client.get(ConfigMaps, 'missing', ns)).toBeUndefined();

    await client.patch(ConfigMaps, 'one', ns, { data: { b: '2' } });
    const applied = await client.patch(
      ConfigMaps,
      'one',
      ns,
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'one', namespace: ns },
        data: { c: '3' },
      },
      { type: 'apply', fieldManager: 'llmproxy-test' },
    );
    expect(applied.data).toEqual({ a: '1', b: '2', c: '3' });

    const listed = await client.list(ConfigMaps, { namespace: ns, limit: 1 });
    expect(listed.items.map((i) => i.metadata?.name)).toContain('one');
    expect(listed.items[0]?.kind).toBe('ConfigMap');
    expect(listed.resourceVersion).not.toBe('');

    expect(await client.delete(ConfigMaps, 'one', ns)).toBe(true);
    expect(await client.delete(ConfigMaps, 'one', ns)).toBe(false);
  });

  it('writes status through the subresource, and skips a write that changes nothing', async () => {
    await client.create(Pods, {
      metadata: { name: 'status-pod', namespace: ns },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    });
    const condition = {
      type: 'LlmproxyReady',
      status: 'True' as const,
      reason: 'PolicyAcked',
      message: 'ok',
      lastTransitionTime: '2026-01-01T00:00:00Z',
    };
    // A controller keeps what the server added to a condition and replaces only its own.
    type Status = { conditions?: { type: string }[] } & Record<string, unknown>;
    const compute = (pod: { status?: Status }) => {
      const conditions = pod.status?.conditions ?? [];
      const existing = conditions.find((c) => c.type === condition.type);
      return {
        ...pod.status,
        conditions: [...conditions.filter((c) => c !== existing), { ...existing, ...condition }],
      };
    };
    const first = await client.updateStatus(Pods, 'status-pod', ns, compute);
    expect(first.written).toBe(true);
    const second = await client.updateStatus(Pods, 'status-pod', ns, compute);
    expect(second.written).toBe(false);
  });

  it('reviews a bound token for our audience and records an Event', async () => {
    const cp = await sharedControlPlane();
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    const pod = await client.create(Pods, {
      metadata: { name: 'review-pod', namespace: ns },
      spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'busybox' }] },
    });
    const token = await cp.tokenFor(ns, 'app', {
      audiences: ['llmproxy.io'],
      boundPod: { name: 'review-pod', uid: pod.metadata?.uid ?? '' },
    });
    const review = await client.tokenReview(token, ['llmproxy.io']);
    expect(review.authenticated).toBe(true);
    expect(review.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([
      pod.metadata?.uid,
    ]);

    const event = await client.createEvent(
      {
        regarding: {
          apiVersion: 'v1',
          kind: 'Pod',
          name: 'review-pod',
          namespace: ns,
          uid: pod.metadata?.uid,
        },
        type: 'Normal',
        reason: 'PolicyDelivered',
        action: 'Distribute',
        note: 'policy delivered',
      },
      'llmproxy.io/operator',
      'test',
    );
    expect(event.metadata?.name).toMatch(/^review-pod-/);
  });

  it('keeps a cache in step with list+watch and reports every change', async () => {
    const informer = new Informer<ConfigMap>(client, ConfigMaps, { namespace: ns });
    const changes: string[] = [];
    let syncs = 0;
    informer.subscribe({
      onChange: (c: Change<ConfigMap>) => changes.push(`${c.type}:${c.object.metadata?.name}`),
      onSync: () => syncs++,
    });
    await client.create(ConfigMaps, { metadata: { name: 'before', namespace: ns } });
    await informer.start();
    expect(informer.get('before', ns)).toBeDefined();
    expect(syncs).toBe(1);

    await client.create(ConfigMaps, { metadata: { name: 'after', namespace: ns } });
    await client.patch(ConfigMaps, 'after', ns, { data: { x: '1' } });
    await client.delete(ConfigMaps, 'before', ns);
    await waitFor(
      () => changes.includes('deleted:before') && informer.get('after', ns)?.data?.x === '1',
    );
    expect(changes).toEqual(
      expect.arrayContaining(['added:before', 'added:after', 'updated:after', 'deleted:before']),
    );
    await informer.stop();
  });

  it('relists when its resourceVersion is too old (410 Gone) and reconciles', async () => {
    // A resource type the API server starts caching now has no history before now: a watch
    // from an earlier revision gets the same 410 a long-disconnected watch gets.
    const staleVersion = (await client.list(ConfigMaps, { namespace: ns })).resourceVersion;
    const Stales = await createTestCrd('stales');
    await client.create(Stales, { metadata: { name: 'one', namespace: ns } });

    const informer = new Informer(client, Stales, {
      namespace: ns,
      resumeFrom: staleVersion,
      backoff: { baseMs: 50, maxMs: 500 },
    });
    let synced: KubeObject[] = [];
    informer.subscribe({ onSync: (objects) => (synced = objects) });
    await informer.start();
    await waitFor(
      () => informer.stats().gone >= 1 && informer.get('one', ns) !== undefined,
      10_000,
      () => JSON.stringify(informer.stats()),
    );
    expect(informer.stats().lists).toBe(1);
    expect(synced.map((o) => o.metadata?.name)).toEqual(['one']);

    // Still watching after the relist.
    await client.create(Stales, { metadata: { name: 'two', namespace: ns } });
    await waitFor(() => informer.get('two', ns) !== undefined);
    await informer.stop();
  });

  it('restarts a watch that goes silent, without losing events', async () => {
    const informer = new Informer<ConfigMap>(client, ConfigMaps, {
      namespace: ns,
      watchdogMs: 400,
    });
    await informer.start();
    await waitFor(() => informer.stats().watchdogRestarts >= 1, 5000);
    await client.create(ConfigMaps, { metadata: { name: 'after-watchdog', namespace: ns } });
    await waitFor(() => informer.get('after-watchdog', ns) !== undefined);
    expect(informer.stats().lists).toBe(1);
    await informer.stop();
  });
});
