// Whether the API server runs native sidecars (init containers with restartPolicy Always):
// on by default from Kubernetes 1.29. Read once at startup from /version and cached by the
// caller; `sidecar.nativeSidecars` in the configuration can force either answer.
import type { KubeClient } from '../kube/index.js';

export interface ServerVersion {
  major?: string;
  minor?: string;
  gitVersion?: string;
}

/** Pure: 1.29 and later. Providers write minors like "29+"; gitVersion is the fallback. */
export function nativeSidecarsSupported(version: ServerVersion): boolean {
  let major = Number.parseInt(version.major ?? '', 10);
  let minor = Number.parseInt(version.minor ?? '', 10);
  if (!Number.isFinite(major) || !Number.isFinite(minor)) {
    const match = /^v?(\d+)\.(\d+)/.exec(version.gitVersion ?? '');
    major = Number(match?.[1]);
    minor = Number(match?.[2]);
  }
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return false;
  return major > 1 || (major === 1 && minor >= 29);
}

export async function detectNativeSidecars(
  client: KubeClient,
  mode: 'auto' | 'always' | 'never',
): Promise<boolean> {
  if (mode !== 'auto') return mode === 'always';
  return nativeSidecarsSupported(await client.request<ServerVersion>('/version'));
}
