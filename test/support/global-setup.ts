// Starts the one control plane the e2e tests of a jest run share, and tells the workers where it is.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControlPlane, ControlPlaneState } from './controlplane.js';

declare global {
  var __llmproxyControlPlane: ControlPlane | undefined;
}

export default async function globalSetup(): Promise<void> {
  // Jest loads global hooks through require() with its transform, which cannot map the
  // `./controlplane.js` specifier to the .ts source; load the source by its path instead.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const { startControlPlane, E2E_STATE_ENV } = (await import(
    path.join(here, 'controlplane.ts')
  )) as typeof import('./controlplane.js');

  const verbose = process.env['LLMPROXY_E2E_LOG'] === '1';
  const started = Date.now();
  const cp = await startControlPlane({
    log: verbose ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  globalThis.__llmproxyControlPlane = cp;
  const state: ControlPlaneState = {
    dir: path.dirname(cp.kubeconfigPath),
    apiServerURL: cp.apiServerURL,
    kubeconfigPath: cp.kubeconfigPath,
    caPem: cp.caPem,
    binDir: cp.binDir,
  };
  const file = path.join(state.dir, 'state.json');
  await writeFile(file, JSON.stringify(state), { mode: 0o600 });
  // Workers are forked after globalSetup, so they inherit this.
  process.env[E2E_STATE_ENV] = file;
  process.stderr.write(
    `\n[e2e] control plane ready at ${cp.apiServerURL} in ${Date.now() - started} ms ` +
      `(KUBECONFIG=${cp.kubeconfigPath})\n`,
  );
}
