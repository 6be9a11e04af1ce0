// When to create and rotate the operator's CA and serving certificate (pure, `now` given).
//
// Rotation never leaves a moment where a client and a replica disagree:
// 1. well before the CA expires, a next CA is created and only PUBLISHED: the bundle (webhook
//    caBundle, sidecars' CA file) carries current + next;
// 2. after `overlapMs`, when every webhook configuration, replica and sidecar has the bundle,
//    the next CA is promoted: the serving certificate is re-issued by it, and the old CA stays in
//    the bundle as `previous` for another `overlapMs` while replicas reload the new leaf;
// 3. then the previous CA is dropped.
// The serving certificate alone is renewed by the same CA whenever it nears expiry, its names
// change, or it is not signed by the current CA: every client trusts that CA already.
import { inspect, type KeyPairPem } from './pki.js';

export interface CertState {
  /** Signs the serving certificate. */
  ca?: KeyPairPem;
  /** Published in the bundle, not yet signing. */
  nextCa?: KeyPairPem;
  nextCaSince?: number;
  /** Retired, still in the bundle until `previousCaUntil`. */
  previousCaPem?: string;
  previousCaUntil?: number;
  leaf?: KeyPairPem;
}

export interface CertPolicy {
  /** DNS names of the Service: `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`. */
  dnsNames: string[];
  /** Extra IP SANs (tests reach the webhook at 127.0.0.1). */
  ips?: string[];
  caLifetimeMs: number;
  leafLifetimeMs: number;
  /** Renew when less than this fraction of the lifetime is left. */
  renewFraction: number;
  /** How long a bundle change is given to reach every client before it is relied on. */
  overlapMs: number;
}

const DAY = 24 * 3600 * 1000;

export const DEFAULT_CERT_POLICY: Omit<CertPolicy, 'dnsNames'> = {
  caLifetimeMs: 3 * 365 * DAY,
  leafLifetimeMs: 90 * DAY,
  renewFraction: 1 / 3,
  overlapMs: DAY,
};

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

export type CertStep =
  | { kind: 'create-ca'; reason: string }
  | { kind: 'stage-next-ca' }
  | { kind: 'promote-next-ca' }
  | { kind: 'drop-previous-ca' }
  | { kind: 'issue-leaf'; reason: string };

/** What to do now, in order; empty when the state is good as it is. */
export function planCertificates(state: CertState, policy: CertPolicy, now: number): CertStep[] {
  const ca = inspect(state.ca?.certPem);
  if (!ca || !ca.isCa || !state.ca?.keyPem || ca.notAfter <= now) {
    // Nothing trusted yet (first start) or nothing worth keeping: start over.
    return [{ kind: 'create-ca', reason: ca ? 'the CA expired' : 'no CA yet' }];
  }
  const steps: CertStep[] = [];
  let signer = ca;
  const next = inspect(state.nextCa?.certPem);
  if (state.previousCaPem && (state.previousCaUntil ?? 0) <= now) {
    steps.push({ kind: 'drop-previous-ca' });
  }
  if (next && (state.nextCaSince ?? now) + policy.overlapMs <= now && !state.previousCaPem) {
    steps.push({ kind: 'promote-next-ca' });
    signer = next;
  } else if (!next && nearExpiry(ca, policy, now)) {
    steps.push({ kind: 'stage-next-ca' });
  }
  if (steps.some((s) => s.kind === 'promote-next-ca')) {
    steps.push({ kind: 'issue-leaf', reason: 'the next CA was promoted' });
    return steps;
  }
  const leafProblem = leafNeedsIssuing(state.leaf, signer.subjectKeyId, policy, now);
  if (leafProblem) steps.push({ kind: 'issue-leaf', reason: leafProblem });
  return steps;
}

function nearExpiry(
  cert: { notBefore: number; notAfter: number },
  policy: CertPolicy,
  now: number,
): boolean {
  const lifetime = cert.notAfter - cert.notBefore;
  return cert.notAfter - now < lifetime * policy.renewFraction;
}

function leafNeedsIssuing(
  leaf: KeyPairPem | undefined,
  caKeyId: string | undefined,
  policy: CertPolicy,
  now: number,
): string | undefined {
  const info = inspect(leaf?.certPem);
  if (!info || !leaf?.keyPem) return 'no serving certificate yet';
  if (info.notAfter <= now) return 'the serving certificate expired';
  if (nearExpiry(info, policy, now)) return 'the serving certificate nears expiry';
  if (caKeyId && info.authorityKeyId !== caKeyId) return 'not signed by the current CA';
  const wanted = [...policy.dnsNames].sort().join(',');
  if ([...info.dnsNames].sort().join(',') !== wanted) return 'the service names changed';
  return undefined;
}

/** The PEM bundle clients must trust: current CA, and next or previous during a rotation. */
export function caBundleOf(state: CertState): string {
  return [state.ca?.certPem, state.nextCa?.certPem, state.previousCaPem]
    .filter((pem): pem is string => !!pem)
    .map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`))
    .join('');
}
