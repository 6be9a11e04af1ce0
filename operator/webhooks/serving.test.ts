// Which stored pods the operator serves: the status annotation is only a claim (a pod can set it
// on itself); the spec must not let any container but the injected sidecar hold the token.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  ANNOTATION_INJECT,
  ANNOTATION_STATUS,
  SIDECAR_NAME,
  TOKEN_VOLUME,
  injectPod,
  servingProblem,
  type Container,
  type PodObject,
} from './inject.js';
import { testContext } from './testdata.js';

const ctx = testContext();
const config = ctx.config;

function injectedPod(annotations: Record<string, string> = {}): PodObject {
  const outcome = injectPod(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app-1', annotations: { [ANNOTATION_INJECT]: 'true', ...annotations } },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
    },
    ctx,
  );
  if (outcome.action !== 'inject') throw new Error(outcome.reason);
  return outcome.pod;
}

function sidecarOf(pod: PodObject): Container {
  const found = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
    (c) => c.name === SIDECAR_NAME,
  );
  if (!found) throw new Error('no sidecar');
  return found;
}

/** The pod with its sidecar container changed by `edit`. */
function withSidecar(edit: (c: Container) => void): PodObject {
  const pod = injectedPod();
  edit(sidecarOf(pod));
  return pod;
}

const tokenVolume = (name: string) => ({
  name,
  projected: { sources: [{ serviceAccountToken: { audience: 'llmproxy.io', path: 'token' } }] },
});

describe('servingProblem', () => {
  it('serves a pod exactly as the webhook injected it, with or without the settings', () => {
    expect(servingProblem(injectedPod(), config)).toBeUndefined();
    expect(servingProblem(injectedPod())).toBeUndefined();
    expect(
      servingProblem(injectedPod({ 'llmproxy.io/sidecar-log-level': 'debug' }), config),
    ).toBeUndefined();
  });

  it('still serves pods injected by an older release (image tag, heap sizes, no malloc settings)', () => {
    const pod = withSidecar((c) => {
      c.image = `${String(c.image).split(':')[0]}:0.0.1`;
      c.env = (c.env ?? [])
        .filter((e) => !e.name.startsWith('MALLOC_'))
        .map((e) =>
          e.name === 'NODE_OPTIONS' ? { name: e.name, value: '--max-old-space-size=64' } : e,
        );
    });
    expect(servingProblem(pod, config)).toBeUndefined();
  });

  it('refuses a pod that set the annotation itself and projects its own llmproxy.io token', () => {
    const pod: PodObject = {
      metadata: { name: 'sneaky', annotations: { [ANNOTATION_STATUS]: '{"version":"x"}' } },
      spec: {
        containers: [
          { name: 'app', image: 'app:1', volumeMounts: [{ name: 'mine', mountPath: '/t' }] },
        ],
        volumes: [tokenVolume('mine')],
      },
    };
    expect(servingProblem(pod)).toMatch(
      /volume mine projects a token for the llmproxy.io audience/,
    );
  });

  it('refuses a pod whose app container, or an ephemeral debug container, mounts the token volume', () => {
    const app = injectedPod();
    (app.spec?.containers.find((c) => c.name === 'app') as Container).volumeMounts = [
      { name: TOKEN_VOLUME, mountPath: '/steal' },
    ];
    expect(servingProblem(app, config)).toMatch(/container app mounts llmproxy-token/);
    const debugged = injectedPod();
    (debugged.spec as Record<string, unknown>).ephemeralContainers = [
      {
        name: 'debugger',
        image: 'busybox',
        volumeMounts: [{ name: TOKEN_VOLUME, mountPath: '/t' }],
      },
    ];
    expect(servingProblem(debugged, config)).toMatch(/container debugger mounts llmproxy-token/);
  });

  it('refuses a shared process namespace and a second sidecar', () => {
    const shared = injectedPod();
    (shared.spec as Record<string, unknown>).shareProcessNamespace = true;
    expect(servingProblem(shared, config)).toMatch(/shareProcessNamespace/);
    const twice = injectedPod();
    twice.spec?.containers.push({ ...sidecarOf(twice) });
    expect(servingProblem(twice, config)).toMatch(/exactly one llmproxy-sidecar/);
  });

  it.each<[string, (c: Container) => void, RegExp]>([
    [
      'another image',
      (c) => (c.image = 'evil.example/sidecar:1'),
      /does not run the sidecar image/,
    ],
    [
      'a shell instead of the sidecar',
      (c) => (c.command = ['/bin/sh', '-c', 'cat /var/run/secrets/llmproxy.io/token/token']),
      /command/,
    ],
    [
      'an operator URL of its choosing',
      (c) =>
        (c.args = ['--operator-url', 'https://evil.example', ...(c.args as string[]).slice(2)]),
      /does not connect to this operator/,
    ],
    [
      'a second operator URL',
      (c) => (c.args = [...(c.args as string[]), '--operator-url=https://evil.example']),
      /does not connect/,
    ],
    [
      'a malloc setting that is not a byte count',
      (c) => c.env?.push({ name: 'MALLOC_TRIM_THRESHOLD_', value: '1 --require=/tmp/x' }),
      /sets MALLOC_TRIM_THRESHOLD_/,
    ],
    [
      'a malloc setting read from elsewhere',
      (c) =>
        c.env?.push({
          name: 'MALLOC_MMAP_THRESHOLD_',
          valueFrom: { configMapKeyRef: { name: 'x', key: 'y' } },
        }),
      /sets MALLOC_MMAP_THRESHOLD_/,
    ],
    [
      'an allocator of its own',
      (c) => c.env?.push({ name: 'LD_PRELOAD', value: '/tmp/evil.so' }),
      /sets LD_PRELOAD/,
    ],
    [
      'a name the allowlist object inherits',
      (c) => c.env?.push({ name: 'toString', value: '1' }),
      /sets toString/,
    ],
    [
      'code through NODE_OPTIONS',
      (c) => c.env?.push({ name: 'NODE_OPTIONS', value: '--import=data:text/javascript,1' }),
      /sets NODE_OPTIONS/,
    ],
    [
      'env from a ConfigMap',
      (c) => (c.envFrom = [{ configMapRef: { name: 'x' } }]),
      /env from elsewhere/,
    ],
  ])('refuses a "sidecar" with %s', (_name, edit, problem) => {
    expect(servingProblem(withSidecar(edit), config)).toMatch(problem);
  });

  it('lets only heap sizing through NODE_OPTIONS', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (value) => {
        const pod = withSidecar((c) => {
          c.env = (c.env ?? []).map((e) =>
            e.name === 'NODE_OPTIONS' ? { name: e.name, value } : e,
          );
        });
        const served = servingProblem(pod, config) === undefined;
        if (served) expect(value).toMatch(/^(\s*--max-(old|semi)-space-size=\d+)*\s*$/);
      }),
    );
  });
});
