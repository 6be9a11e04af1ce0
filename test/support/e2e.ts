// What an e2e test uses: the run's shared control plane and a namespace of its own.
//
// Run one file:  NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects e2e -- test/e2e/x.test.ts
// (the `--` matters: --selectProjects takes every following word as a project name).
// LLMPROXY_E2E_LOG=1 streams the etcd/kube-apiserver output of the shared control plane.
// What the control plane does not run (no controller-manager, no scheduler) is in controlplane.ts.
import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  attachControlPlane,
  type ControlPlane,
  type ControlPlaneState,
  E2E_STATE_ENV as STATE_ENV,
} from './controlplane.js';

export type { ControlPlane, KubeUser, KubectlResult } from './controlplane.js';

let shared: ControlPlane | undefined;

/** Per-test timeout of the e2e project (also a setupFilesAfterEnv entry, so every e2e file gets it). */
export const E2E_TEST_TIMEOUT_MS = 120_000;
jest.setTimeout(E2E_TEST_TIMEOUT_MS);

/**
 * The control plane started by the e2e project's globalSetup. Its stop() is a no-op here:
 * globalTeardown owns it.
 */
export async function sharedControlPlane(): Promise<ControlPlane> {
  if (shared) return shared;
  const file = process.env[STATE_ENV];
  if (!file) {
    throw new Error(
      `${STATE_ENV} is not set: run e2e tests through the jest e2e project ` +
        '(NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects e2e -- <files>)',
    );
  }
  const state = JSON.parse(readFileSync(file, 'utf8')) as ControlPlaneState;
  shared = attachControlPlane(state);
  return shared;
}

/** Creates a namespace named `<prefix>-<random>` (DNS-1123) and returns its name. */
export async function freshNamespace(prefix: string): Promise<string> {
  const cp = await sharedControlPlane();
  const base =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 50) || 'test';
  const name = `${base}-${randomBytes(4).toString('hex')}`;
  const res = await cp.kubectl(['create', 'namespace', name]);
  if (res.code !== 0) throw new Error(`creating namespace ${name} failed: ${res.stderr.trim()}`);
  return name;
}
