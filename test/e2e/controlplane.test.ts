// The test control plane is a real kube-apiserver: CRDs, TokenRequest/TokenReview and RBAC work,
// and the harness survives port collisions, a crashed etcd and leftovers of a killed run.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import {
  attachControlPlane,
  type ControlPlane,
  ControlPlaneError,
  processAlive,
  SERVICE_ACCOUNT_ISSUER,
  startControlPlane,
} from '../support/controlplane.js';
import { freshNamespace, sharedControlPlane } from '../support/e2e.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function ok(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; extra?: Record<string, string[]> };
}

async function review(cp: ControlPlane, token: string, audiences: string[]) {
  const body = JSON.stringify({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token, audiences },
  });
  const out = await ok(cp, ['create', '-f', '-', '-o', 'json'], body);
  return (JSON.parse(out) as { status: TokenReviewStatus }).status;
}

const widgetCRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.e2e.llmproxy.test' },
  spec: {
    group: 'e2e.llmproxy.test',
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['size'],
                properties: { size: { type: 'integer', minimum: 1 } },
              },
            },
          },
        },
      },
    ],
  },
};

describe('the shared e2e control plane', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await sharedControlPlane();
  });

  it('is ready and answers kubectl as the admin user', async () => {
    expect(cp.apiServerURL).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(cp.caPem).toContain('BEGIN CERTIFICATE');
    expect((await ok(cp, ['get', '--raw', '/readyz'])).trim()).toBe('ok');
    expect(await ok(cp, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.groups}'])).toContain(
      'system:masters',
    );
  });

  it('establishes every CRD in crds/ and stores a custom object that the schema validates', async () => {
    const crdDir = path.join(repoRoot, 'crds');
    const files = existsSync(crdDir)
      ? readdirSync(crdDir)
          .filter((f) => /\.ya?ml$/.test(f))
          .map((f) => path.join(crdDir, f))
      : [];
    const names: string[] = [];
    for (const file of files) {
      const out = await ok(cp, [
        'apply',
        '--server-side',
        '--force-conflicts',
        '-f',
        file,
        '-o',
        'name',
      ]);
      names.push(...out.split('\n').filter((l) => l.startsWith('customresourcedefinition')));
    }
    await ok(cp, ['apply', '--server-side', '-f', '-'], JSON.stringify(widgetCRD));
    names.push('customresourcedefinition.apiextensions.k8s.io/widgets.e2e.llmproxy.test');
    await ok(cp, ['wait', '--for=condition=Established', '--timeout=60s', ...names]);

    const ns = await freshNamespace('crd');
    const api = (await cp.kubeConfig()).makeApiClient(k8s.CustomObjectsApi);
    const target = { group: 'e2e.llmproxy.test', version: 'v1', namespace: ns, plural: 'widgets' };
    await api.createNamespacedCustomObject({
      ...target,
      body: {
        apiVersion: 'e2e.llmproxy.test/v1',
        kind: 'Widget',
        metadata: { name: 'w' },
        spec: { size: 3 },
      },
    });
    const got = (await api.getNamespacedCustomObject({ ...target, name: 'w' })) as {
      spec: { size: number };
    };
    expect(got.spec).toEqual({ size: 3 });

    await expect(
      api.createNamespacedCustomObject({
        ...target,
        body: {
          apiVersion: 'e2e.llmproxy.test/v1',
          kind: 'Widget',
          metadata: { name: 'bad' },
          spec: { size: 0 },
        },
      }),
    ).rejects.toThrow(/spec\.size/);
  });

  it('stores the example LlmPolicy through client-node and reads it back', async () => {
    const example = path.join(repoRoot, 'examples/llmpolicy.yaml');
    const crd = path.join(repoRoot, 'crds/llmpolicies.llmproxy.io.yaml');
    if (!existsSync(example) || !existsSync(crd)) return; // the API issue has not landed yet
    await ok(cp, ['apply', '--server-side', '--force-conflicts', '-f', crd]);
    await ok(cp, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/llmpolicies.llmproxy.io',
    ]);
    const ns = await freshNamespace('llmpolicy');
    const policy = parseYaml(readFileSync(example, 'utf8')) as {
      metadata: { name: string; namespace?: string };
      spec: Record<string, unknown>;
    };
    policy.metadata.namespace = ns;
    const api = (await cp.kubeConfig()).makeApiClient(k8s.CustomObjectsApi);
    const target = {
      group: 'llmproxy.io',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'llmpolicies',
    };
    await api.createNamespacedCustomObject({ ...target, body: policy });
    const got = (await api.getNamespacedCustomObject({
      ...target,
      name: policy.metadata.name,
    })) as {
      spec: unknown;
    };
    // The server applies the schema's defaults on top of what was sent.
    expect(got.spec).toMatchObject(policy.spec);
  });

  it('mints a ServiceAccount token for llmproxy.io that TokenReview accepts', async () => {
    const ns = await freshNamespace('token');
    await ok(cp, ['create', 'serviceaccount', 'sidecar', '-n', ns]);
    const token = await cp.tokenFor(ns, 'sidecar', { audiences: ['llmproxy.io'] });
    const status = await review(cp, token, ['llmproxy.io']);
    expect(status.authenticated).toBe(true);
    expect(status.user?.username).toBe(`system:serviceaccount:${ns}:sidecar`);
    expect(status.audiences).toEqual(['llmproxy.io']);
  });

  it('binds a token to a Pod so TokenReview reports that pod by name and uid', async () => {
    const ns = await freshNamespace('bound');
    await ok(cp, ['create', 'serviceaccount', 'app', '-n', ns]);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app', namespace: ns },
      spec: {
        serviceAccountName: 'app',
        containers: [{ name: 'app', image: 'example.invalid/app' }],
      },
    };
    const created = JSON.parse(
      await ok(cp, ['create', '-f', '-', '-o', 'json'], JSON.stringify(pod)),
    ) as {
      metadata: { uid: string };
    };
    const token = await cp.tokenFor(ns, 'app', {
      audiences: ['llmproxy.io'],
      boundPod: { name: 'app', uid: created.metadata.uid },
      expirationSeconds: 600,
    });
    const status = await review(cp, token, ['llmproxy.io']);
    expect(status.authenticated).toBe(true);
    expect(status.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['app']);
    expect(status.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([
      created.metadata.uid,
    ]);
  });

  it('rejects a token minted for another audience when the review is restricted to llmproxy.io', async () => {
    const ns = await freshNamespace('audience');
    await ok(cp, ['create', 'serviceaccount', 'other', '-n', ns]);
    const token = await cp.tokenFor(ns, 'other', { audiences: [SERVICE_ACCOUNT_ISSUER] });
    const status = await review(cp, token, ['llmproxy.io']);
    expect(status.authenticated).toBeFalsy();
    expect(status.error).toBeTruthy();
  });

  it('explains that the ServiceAccount must be created first', async () => {
    const ns = await freshNamespace('nosa');
    await expect(cp.tokenFor(ns, 'missing')).rejects.toThrow(/create the ServiceAccount/);
  });

  it('forbids a plain user to list secrets until RBAC grants it', async () => {
    const ns = await freshNamespace('rbac');
    const alice = { name: 'alice', groups: ['llmproxy:developers'] };
    const denied = await cp.kubectl(['get', 'secrets', '-n', ns], { user: alice });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden.*User "alice" cannot list resource "secrets"/i);

    await ok(cp, ['create', 'role', 'read-secrets', '-n', ns, '--verb=list', '--resource=secrets']);
    await ok(cp, [
      'create',
      'rolebinding',
      'devs-read-secrets',
      '-n',
      ns,
      '--role=read-secrets',
      '--group=llmproxy:developers',
    ]);
    const allowed = await cp.kubectl(['auth', 'can-i', 'list', 'secrets', '-n', ns], {
      user: alice,
    });
    expect(allowed.stdout.trim()).toBe('yes');
    const other = await cp.kubectl(['auth', 'can-i', 'list', 'secrets', '-n', ns], {
      user: { name: 'bob' },
    });
    expect(other.stdout.trim()).toBe('no');
  });
});

function ownDirs(): string[] {
  return readdirSync(os.tmpdir()).filter((d) => d.startsWith('llmproxy-cp-'));
}

const alive = processAlive;

describe('control plane failure handling', () => {
  const extra: ControlPlane[] = [];
  afterAll(async () => {
    await Promise.all(extra.map((cp) => cp.stop()));
  });

  it('retries with new ports when etcd or kube-apiserver finds its port taken, then fails fast when etcd dies', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    // Attempt 1: etcd's client port is taken. Attempt 2: the API server's. Attempt 3: all free.
    let calls = 0;
    const free = (): Promise<number> =>
      new Promise((resolve) => {
        const s = net.createServer();
        s.listen(0, '127.0.0.1', () => {
          const { port } = s.address() as net.AddressInfo;
          s.close(() => resolve(port));
        });
      });
    const lines: string[] = [];
    let cp: ControlPlane;
    try {
      cp = await startControlPlane({
        log: (l) => lines.push(l),
        pickPort: async () => {
          calls++;
          return calls === 1 || calls === 6 ? taken : free();
        },
      });
    } finally {
      blocker.close();
    }
    extra.push(cp);
    expect(lines.filter((l) => l.includes('port collision'))).toHaveLength(2);
    expect((await ok(cp, ['get', '--raw', '/readyz'])).trim()).toBe('ok');

    process.kill(cp.pids.etcd, 'SIGKILL');
    for (let i = 0; i < 50 && alive(cp.pids.etcd); i++)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await expect(cp.kubectl(['get', 'ns'])).rejects.toThrow(/etcd was killed by SIGKILL/);
    // A jest worker sees the same through the pid files of a control plane it did not start.
    const view = attachControlPlane({
      dir: path.dirname(cp.kubeconfigPath),
      apiServerURL: cp.apiServerURL,
      kubeconfigPath: cp.kubeconfigPath,
      caPem: cp.caPem,
      binDir: cp.binDir,
    });
    await expect(view.tokenFor('default', 'any')).rejects.toThrow(
      /etcd \(pid \d+\) is not running/,
    );
    expect(Date.now() - started).toBeLessThan(2000);

    const dir = path.dirname(cp.kubeconfigPath);
    await cp.stop();
    await cp.stop(); // idempotent
    expect(existsSync(dir)).toBe(false);
    expect(alive(cp.pids.apiserver)).toBe(false);
  });

  it('reports an etcd that crashes at startup with its output, without hanging or leaving a data dir', async () => {
    const before = ownDirs();
    const started = Date.now();
    const err = await startControlPlane({ etcdFlags: { 'data-dir': '/dev/null/etcd' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ControlPlaneError);
    expect((err as Error).message).toMatch(/etcd exited with code \d+ before etcd was healthy/);
    expect((err as Error).message).toMatch(/not a directory/);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(ownDirs().filter((d) => !before.includes(d))).toEqual([]);
  });

  it('cleans up after a run that was SIGKILLed: orphans stopped, data dir removed, next start works', async () => {
    const script = `
      const { startControlPlane } = await import(${JSON.stringify(path.join(repoRoot, 'test/support/controlplane.ts'))});
      const cp = await startControlPlane();
      console.log('READY ' + JSON.stringify({ dir: cp.kubeconfigPath, pids: cp.pids }));
      setInterval(() => {}, 1 << 30);
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '' },
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const info = await new Promise<{ dir: string; pids: { etcd: number; apiserver: number } }>(
      (resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /READY (.*)\n/.exec(out);
          if (m?.[1]) resolve(JSON.parse(m[1]) as never);
        });
        child.on('exit', (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
      },
    );
    const dir = path.dirname(info.dir);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(dir)).toBe(true); // the killed run could not clean up

    const lines: string[] = [];
    const cp = await startControlPlane({ log: (l) => lines.push(l) });
    extra.push(cp);
    expect(existsSync(dir)).toBe(false);
    expect(lines.join('\n')).toContain(`removed stale ${dir}`);
    expect(alive(info.pids.etcd)).toBe(false);
    expect(alive(info.pids.apiserver)).toBe(false);
    expect((await ok(cp, ['get', '--raw', '/readyz'])).trim()).toBe('ok');
  });
});
