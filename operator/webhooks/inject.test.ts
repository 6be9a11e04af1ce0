import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  ANNOTATION_CA_BUNDLE,
  ANNOTATION_INJECT,
  ANNOTATION_STATUS,
  CA_VOLUME,
  InjectionError,
  SIDECAR_NAME,
  TOKEN_VOLUME,
  injectPod,
  parseQuantity,
  type Container,
  type PodObject,
} from './inject.js';
import { applyPatch, diffPatch } from './patch.js';
import { TEST_CA_BUNDLE, testContext } from './testdata.js';

const optedIn = (spec: Partial<PodObject['spec']> = {}, annotations: Record<string, string> = {}) =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'app-',
      annotations: { [ANNOTATION_INJECT]: 'true', ...annotations },
    },
    spec: { containers: [{ name: 'app', image: 'app:1' }], ...spec },
  }) as PodObject;

function injected(pod: PodObject, ctx = testContext()): PodObject {
  const outcome = injectPod(pod, ctx);
  if (outcome.action !== 'inject') throw new Error(`expected injection, got ${outcome.reason}`);
  return outcome.pod;
}

const envOf = (c: Container | undefined) =>
  Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('injectPod', () => {
  it('adds the sidecar as a native sidecar: the first init container, restartPolicy Always, startup probe', () => {
    const pod = injected(optedIn({ initContainers: [{ name: 'migrate', image: 'm:1' }] }));
    const init = pod.spec?.initContainers ?? [];
    expect(init.map((c) => c.name)).toEqual([SIDECAR_NAME, 'migrate']);
    expect(init[0]?.restartPolicy).toBe('Always');
    expect(init[0]?.startupProbe).toMatchObject({
      httpGet: { path: '/healthz', port: 15021, scheme: 'HTTPS' },
    });
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('falls back to a regular container without restartPolicy when native sidecars are off', () => {
    const pod = injected(optedIn(), testContext({ nativeSidecars: false }));
    expect(pod.spec?.initContainers).toBeUndefined();
    const sidecar = pod.spec?.containers.find((c) => c.name === SIDECAR_NAME);
    expect(sidecar).toBeDefined();
    expect(sidecar?.restartPolicy).toBeUndefined();
  });

  it('moves a sidecar injected in the other mode instead of adding a second one', () => {
    const fallback = injected(optedIn(), testContext({ nativeSidecars: false }));
    const native = injected(fallback, testContext({ nativeSidecars: true }));
    const names = [...(native.spec?.initContainers ?? []), ...(native.spec?.containers ?? [])]
      .map((c) => c.name)
      .filter((n) => n === SIDECAR_NAME);
    expect(names).toHaveLength(1);
    expect(native.spec?.initContainers?.[0]?.name).toBe(SIDECAR_NAME);
  });

  it('passes the managed-mode flags and the downward-API identity to the sidecar', () => {
    const sidecar = injected(optedIn()).spec?.initContainers?.[0];
    expect(sidecar?.command).toEqual(['llmproxy-sidecar']);
    expect(sidecar?.args).toEqual([
      '--operator-url',
      'https://llmproxy-operator.llmproxy-system.svc:8443',
      '--token-file',
      '/var/run/secrets/llmproxy.io/token/token',
      '--ca-file',
      '/var/run/secrets/llmproxy.io/ca/ca.crt',
      '--listen',
      '127.0.0.1:8787',
      '--admin-listen',
      '127.0.0.1:15020',
      '--probe-listen',
      '0.0.0.0:15021',
      '--log-level',
      'info',
    ]);
    expect(envOf(sidecar)).toMatchObject({
      LLMPROXY_POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      LLMPROXY_POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      LLMPROXY_POD_UID: { fieldRef: { fieldPath: 'metadata.uid' } },
      NODE_OPTIONS: '--max-old-space-size=96 --max-semi-space-size=2',
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_TRIM_THRESHOLD_: '131072',
    });
  });

  it('runs the sidecar under the restricted security profile', () => {
    const sidecar = injected(optedIn()).spec?.initContainers?.[0];
    expect(sidecar?.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('mounts the token and the CA into the sidecar only', () => {
    const pod = injected(optedIn({ containers: [{ name: 'a' }, { name: 'b' }] }));
    expect(pod.spec?.volumes?.map((v) => v.name)).toEqual([TOKEN_VOLUME, CA_VOLUME]);
    expect(pod.spec?.volumes?.[0]).toMatchObject({
      projected: {
        sources: [{ serviceAccountToken: { audience: 'llmproxy.io', expirationSeconds: 3600 } }],
      },
    });
    for (const c of pod.spec?.containers ?? []) expect(c.volumeMounts).toBeUndefined();
    expect(pod.metadata?.annotations?.[ANNOTATION_CA_BUNDLE]).toBe(TEST_CA_BUNDLE);
  });

  it('names the service account the token projection needs when nothing else did', () => {
    expect(injected(optedIn()).spec?.serviceAccountName).toBe('default');
    expect(injected(optedIn({ serviceAccountName: 'chat' })).spec?.serviceAccountName).toBe('chat');
  });

  it('points every app container at the proxy but keeps values they set themselves', () => {
    const pod = injected(
      optedIn({
        containers: [
          { name: 'a', env: [{ name: 'OPENAI_BASE_URL', value: 'http://mine' }] },
          { name: 'b' },
        ],
      }),
    );
    const [a, b] = pod.spec?.containers ?? [];
    expect(envOf(a)).toMatchObject({
      OPENAI_BASE_URL: 'http://mine',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:8787/anthropic',
      OPENAI_API_KEY: 'llmproxy-placeholder',
    });
    expect(envOf(b)).toMatchObject({
      OPENAI_BASE_URL: 'http://127.0.0.1:8787/openai/v1',
      ANTHROPIC_API_KEY: 'llmproxy-placeholder',
    });
  });

  it('takes resources and the log level from annotations, and refuses bad ones', () => {
    const pod = injected(
      optedIn(
        {},
        {
          'llmproxy.io/sidecar-cpu': '200m',
          'llmproxy.io/sidecar-memory-limit': '256Mi',
          'llmproxy.io/sidecar-log-level': 'debug',
        },
      ),
    );
    const sidecar = pod.spec?.initContainers?.[0];
    expect(sidecar?.resources).toEqual({
      requests: { cpu: '200m', memory: '96Mi' },
      limits: { memory: '256Mi' },
    });
    expect(sidecar?.args).toContain('debug');
    expect(() =>
      injectPod(optedIn({}, { 'llmproxy.io/sidecar-cpu': 'lots' }), testContext()),
    ).toThrow(/sidecar-cpu: "lots" is not a quantity/);
    expect(() =>
      injectPod(optedIn({}, { 'llmproxy.io/sidecar-memory': '1Gi' }), testContext()),
    ).toThrow(/memory request 1Gi exceeds its limit 192Mi/);
    expect(() =>
      injectPod(optedIn({}, { 'llmproxy.io/sidecar-log-level': 'loud' }), testContext()),
    ).toThrow(InjectionError);
  });

  it('records what it injected, and by which version, in the status annotation', () => {
    const status = JSON.parse(injected(optedIn()).metadata?.annotations?.[ANNOTATION_STATUS] ?? '');
    expect(status).toMatchObject({ version: '0.1.0', mode: 'native-sidecar', containers: ['app'] });
  });

  it('injects for the namespace label, honours a pod opt-out, and skips everything else', () => {
    const plain = { metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] } };
    const labelled = { namespaceLabels: { 'llmproxy.io/injection': 'enabled' } };
    expect(injectPod(plain, testContext()).action).toBe('skip');
    expect(injectPod(plain, testContext(labelled)).action).toBe('inject');
    const optedOut = {
      ...plain,
      metadata: { name: 'p', annotations: { [ANNOTATION_INJECT]: 'false' } },
    };
    expect(injectPod(optedOut, testContext(labelled)).action).toBe('skip');
    expect(injectPod(optedIn(), testContext({ namespace: 'llmproxy-system' })).action).toBe('skip');
  });

  it('refuses an opted-in hostNetwork pod but only warns for a namespace-wide opt-in', () => {
    expect(() => injectPod(optedIn({ hostNetwork: true }), testContext())).toThrow(/hostNetwork/);
    const outcome = injectPod(
      { metadata: { name: 'p' }, spec: { hostNetwork: true, containers: [{ name: 'c' }] } },
      testContext({ namespaceLabels: { 'llmproxy.io/injection': 'enabled' } }),
    );
    expect(outcome).toMatchObject({
      action: 'skip',
      warnings: [expect.stringMatching(/hostNetwork/)],
    });
  });

  it('yields no patch on a pod the API server has stored and defaulted', () => {
    const once = injected(optedIn({ volumes: [{ name: 'data', emptyDir: {} }] }));
    const stored = structuredClone(once) as PodObject & { spec: { initContainers: Container[] } };
    const sidecar = stored.spec.initContainers[0] as Container & Record<string, unknown>;
    sidecar.terminationMessagePath = '/dev/termination-log';
    (sidecar.startupProbe as Record<string, unknown>).successThreshold = 1;
    const token = stored.spec.volumes?.[1] as unknown as { projected: Record<string, unknown> };
    token.projected.defaultMode = 420;
    stored.metadata = { ...stored.metadata, uid: 'u', resourceVersion: '7' };
    expect(diffPatch(stored, injected(stored))).toEqual([]);
    // A real change (another image) is still applied.
    const ctx = testContext();
    ctx.config.sidecar.image = 'ghcr.io/llmproxy/llmproxy:0.2.0';
    expect(injected(stored, ctx).spec?.initContainers?.[0]?.image).toBe(
      'ghcr.io/llmproxy/llmproxy:0.2.0',
    );
  });

  it('keeps the token away from every container but the sidecar', () => {
    const mounting = optedIn({
      containers: [
        { name: 'app', volumeMounts: [{ name: 'llmproxy-token', mountPath: '/t' }] } as Container,
      ],
    });
    expect(() => injectPod(mounting, testContext())).toThrow(
      /container app mounts llmproxy-token, which only the sidecar may mount/,
    );
    const projecting = optedIn({
      volumes: [
        {
          name: 'mine',
          projected: { sources: [{ serviceAccountToken: { audience: 'llmproxy.io', path: 't' } }] },
        },
      ],
    });
    expect(() => injectPod(projecting, testContext())).toThrow(/volume mine projects a token/);
    expect(() => injectPod(optedIn({ shareProcessNamespace: true }), testContext())).toThrow(
      /shareProcessNamespace/,
    );
  });

  it('replaces a look-alike sidecar the pod brought along', () => {
    const once = injected(optedIn());
    const smuggled = structuredClone(once) as PodObject & { spec: { initContainers: Container[] } };
    const sidecar = smuggled.spec.initContainers[0] as Container & Record<string, unknown>;
    sidecar.envFrom = [{ secretRef: { name: 'x' } }];
    sidecar.terminationMessagePath = '/dev/termination-log';
    expect(injected(smuggled).spec?.initContainers?.[0]).toEqual(once.spec?.initContainers?.[0]);
  });

  it('compares quantities across suffixes', () => {
    expect(parseQuantity('500m')).toBeLessThan(parseQuantity('1'));
    expect(parseQuantity('1Gi')).toBeGreaterThan(parseQuantity('1G'));
    expect(parseQuantity('x')).toBeNaN();
  });
});

// Pods as people write them: a few containers with arbitrary fields, env that may already set
// the proxy variables, odd annotation keys (with `/` and `~`), name or generateName only.
const envName = fc.constantFrom(
  'OPENAI_BASE_URL',
  'OPENAI_API_KEY',
  'FOO',
  'BAR',
  'ANTHROPIC_BASE_URL',
);
const containerArb = (name: string) =>
  fc.record(
    {
      name: fc.constant(name),
      image: fc.string({ maxLength: 12 }),
      args: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
      env: fc.uniqueArray(fc.record({ name: envName, value: fc.string({ maxLength: 8 }) }), {
        selector: (e) => e.name,
        maxLength: 3,
      }),
      ports: fc.array(fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }) }), {
        maxLength: 2,
      }),
    },
    { requiredKeys: ['name'] },
  );
const podArb = fc
  .record({
    names: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), {
      minLength: 1,
      maxLength: 4,
    }),
    initNames: fc.uniqueArray(fc.stringMatching(/^init-[a-z]{1,5}$/), { maxLength: 2 }),
    annotations: fc.dictionary(fc.stringMatching(/^[a-z~/.]{1,12}$/), fc.string({ maxLength: 6 }), {
      maxKeys: 3,
    }),
    generateNameOnly: fc.boolean(),
    volumes: fc.uniqueArray(fc.stringMatching(/^vol-[a-z]{1,4}$/), { maxLength: 2 }),
  })
  .chain((p) =>
    fc
      .record({
        containers: fc.tuple(...p.names.map(containerArb)),
        initContainers: fc.tuple(...p.initNames.map(containerArb)),
      })
      .map(({ containers, initContainers }): PodObject => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          ...(p.generateNameOnly ? { generateName: 'job-' } : { name: 'pod-1' }),
          annotations: { ...p.annotations, [ANNOTATION_INJECT]: 'true' },
        },
        spec: {
          containers,
          ...(initContainers.length > 0 ? { initContainers } : {}),
          ...(p.volumes.length > 0
            ? { volumes: p.volumes.map((name) => ({ name, emptyDir: {} })) }
            : {}),
        },
      })),
  );

describe('injection properties', () => {
  it('injecting twice equals injecting once, in both modes', () => {
    fc.assert(
      fc.property(podArb, fc.boolean(), (pod, native) => {
        const ctx = testContext({ nativeSidecars: native });
        const once = injected(pod, ctx);
        expect(injected(once, ctx)).toEqual(once);
        expect(diffPatch(once, injected(once, ctx))).toEqual([]);
      }),
    );
  });

  it('leaves every field of the app containers untouched except the added env entries', () => {
    fc.assert(
      fc.property(podArb, (pod) => {
        const out = injected(pod);
        for (const before of pod.spec?.containers ?? []) {
          const after = out.spec?.containers.find((c) => c.name === before.name);
          const { env: envAfter, ...restAfter } = after ?? { name: '' };
          const { env: envBefore, ...restBefore } = before;
          expect(restAfter).toEqual(restBefore);
          expect(envAfter?.slice(0, envBefore?.length ?? 0)).toEqual(envBefore ?? []);
        }
        const init = (out.spec?.initContainers ?? []).filter((c) => c.name !== SIDECAR_NAME);
        expect(init).toEqual(pod.spec?.initContainers ?? []);
      }),
    );
  });

  it('the patch applied to the original yields the mutated pod', () => {
    fc.assert(
      fc.property(podArb, fc.boolean(), (pod, native) => {
        const out = injected(pod, testContext({ nativeSidecars: native }));
        expect(applyPatch(pod, diffPatch(pod, out))).toEqual(out);
      }),
    );
  });

  it('never mutates its input', () => {
    fc.assert(
      fc.property(podArb, (pod) => {
        const copy = structuredClone(pod);
        injected(pod);
        expect(pod).toEqual(copy);
      }),
    );
  });
});
