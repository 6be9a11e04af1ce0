// Carries out planned steps (key generation is the only side effect), and maps the state to
// and from the Secret that holds it.
import { createCa, createServingCert } from './pki.js';
import { caBundleOf, type CertPolicy, type CertState, type CertStep } from './plan.js';

const CA_NAME = 'llmproxy-operator-ca';

export async function executeSteps(
  state: CertState,
  steps: CertStep[],
  policy: CertPolicy,
  now: number,
): Promise<CertState> {
  let next: CertState = { ...state };
  for (const step of steps) {
    switch (step.kind) {
      case 'create-ca':
        next = { ca: await createCa(CA_NAME, now, policy.caLifetimeMs) };
        next.leaf = await issue(next, policy, now);
        break;
      case 'stage-next-ca':
        next.nextCa = await createCa(CA_NAME, now, policy.caLifetimeMs);
        next.nextCaSince = now;
        break;
      case 'promote-next-ca':
        if (!next.nextCa) break;
        next.previousCaPem = next.ca?.certPem;
        next.previousCaUntil = now + policy.overlapMs;
        next.ca = next.nextCa;
        delete next.nextCa;
        delete next.nextCaSince;
        break;
      case 'drop-previous-ca':
        delete next.previousCaPem;
        delete next.previousCaUntil;
        break;
      case 'issue-leaf':
        next.leaf = await issue(next, policy, now);
        break;
    }
  }
  return next;
}

async function issue(state: CertState, policy: CertPolicy, now: number) {
  if (!state.ca) throw new Error('no CA to issue from');
  return createServingCert(state.ca, policy.dnsNames, now, policy.leafLifetimeMs, policy.ips);
}

/** Secret data keys; `tls.crt`/`tls.key`/`ca.crt` are the names cert-manager uses too. */
export const SECRET_KEYS = {
  leafCert: 'tls.crt',
  leafKey: 'tls.key',
  caCert: 'ca.crt',
  caKey: 'ca.key',
  bundle: 'ca-bundle.crt',
  nextCaCert: 'next-ca.crt',
  nextCaKey: 'next-ca.key',
  previousCaCert: 'previous-ca.crt',
} as const;
export const ANNOTATION_NEXT_CA_SINCE = 'llmproxy.io/next-ca-since';
export const ANNOTATION_PREVIOUS_CA_UNTIL = 'llmproxy.io/previous-ca-until';

export interface SecretShape {
  metadata?: { annotations?: Record<string, string>; [key: string]: unknown };
  data?: Record<string, string>;
  [key: string]: unknown;
}

const decode = (data: Record<string, string> | undefined, key: string): string | undefined => {
  const value = data?.[key];
  return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
};
const encode = (value: string | undefined): string | undefined =>
  value === undefined ? undefined : Buffer.from(value).toString('base64');
const pair = (cert: string | undefined, key: string | undefined) =>
  cert && key ? { certPem: cert, keyPem: key } : undefined;
const time = (value: string | undefined): number | undefined => {
  const ms = value ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
};

export function stateFromSecret(secret: SecretShape | undefined): CertState {
  if (!secret) return {};
  const { data } = secret;
  const annotations = secret.metadata?.annotations ?? {};
  const state: CertState = {
    ca: pair(decode(data, SECRET_KEYS.caCert), decode(data, SECRET_KEYS.caKey)),
    nextCa: pair(decode(data, SECRET_KEYS.nextCaCert), decode(data, SECRET_KEYS.nextCaKey)),
    nextCaSince: time(annotations[ANNOTATION_NEXT_CA_SINCE]),
    previousCaPem: decode(data, SECRET_KEYS.previousCaCert),
    previousCaUntil: time(annotations[ANNOTATION_PREVIOUS_CA_UNTIL]),
    leaf: pair(decode(data, SECRET_KEYS.leafCert), decode(data, SECRET_KEYS.leafKey)),
  };
  return Object.fromEntries(Object.entries(state).filter(([, v]) => v !== undefined)) as CertState;
}

/** The Secret's data and annotations for a state (the caller adds name, namespace, version). */
export function secretFromState(state: CertState): {
  annotations: Record<string, string>;
  data: Record<string, string>;
} {
  const entries: [string, string | undefined][] = [
    [SECRET_KEYS.leafCert, state.leaf?.certPem],
    [SECRET_KEYS.leafKey, state.leaf?.keyPem],
    [SECRET_KEYS.caCert, state.ca?.certPem],
    [SECRET_KEYS.caKey, state.ca?.keyPem],
    [SECRET_KEYS.bundle, caBundleOf(state)],
    [SECRET_KEYS.nextCaCert, state.nextCa?.certPem],
    [SECRET_KEYS.nextCaKey, state.nextCa?.keyPem],
    [SECRET_KEYS.previousCaCert, state.previousCaPem],
  ];
  const data: Record<string, string> = {};
  for (const [key, value] of entries) {
    const encoded = encode(value);
    if (encoded) data[key] = encoded;
  }
  const annotations: Record<string, string> = {};
  if (state.nextCaSince !== undefined) {
    annotations[ANNOTATION_NEXT_CA_SINCE] = new Date(state.nextCaSince).toISOString();
  }
  if (state.previousCaUntil !== undefined) {
    annotations[ANNOTATION_PREVIOUS_CA_UNTIL] = new Date(state.previousCaUntil).toISOString();
  }
  return { annotations, data };
}

/** What a replica serves and publishes, read from the Secret (ours or cert-manager's). */
export function servingMaterial(
  secret: SecretShape | undefined,
): { cert: string; key: string; caBundle: string } | undefined {
  const cert = decode(secret?.data, SECRET_KEYS.leafCert);
  const key = decode(secret?.data, SECRET_KEYS.leafKey);
  const caBundle =
    decode(secret?.data, SECRET_KEYS.bundle) ?? decode(secret?.data, SECRET_KEYS.caCert);
  if (!cert || !key || !caBundle) return undefined;
  return { cert, key, caBundle };
}
