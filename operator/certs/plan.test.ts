import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { executeSteps, secretFromState, servingMaterial, stateFromSecret } from './execute.js';
import {
  caBundleOf,
  planCertificates,
  serviceDnsNames,
  type CertPolicy,
  type CertState,
} from './plan.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.UTC(2026, 0, 1);
const policy: CertPolicy = {
  dnsNames: serviceDnsNames('llmproxy-operator', 'llmproxy-system'),
  caLifetimeMs: 30 * DAY,
  leafLifetimeMs: 9 * DAY,
  renewFraction: 1 / 3,
  overlapMs: DAY,
};

function splitBundle(bundle: string): X509Certificate[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  );
}

function trusts(bundle: string, leafPem: string | undefined, now: number): boolean {
  if (!leafPem) return false;
  const leaf = new X509Certificate(leafPem);
  const valid = Date.parse(leaf.validFrom) <= now && now < Date.parse(leaf.validTo);
  return (
    valid && splitBundle(bundle).some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))
  );
}

/** Round-trips through the Secret each pass, as the manager does. */
async function step(state: CertState, now: number): Promise<{ state: CertState; kinds: string[] }> {
  const steps = planCertificates(state, policy, now);
  const next = await executeSteps(state, steps, policy, now);
  const { data, annotations } = secretFromState(next);
  return {
    state: stateFromSecret({ data, metadata: { annotations } }),
    kinds: steps.map((s) => s.kind),
  };
}

describe('planCertificates', () => {
  it('creates a CA and a serving certificate for the Service names on first start, then rests', async () => {
    const first = await step({}, T0);
    expect(first.kinds).toEqual(['create-ca']);
    const leaf = new X509Certificate(first.state.leaf?.certPem ?? '');
    expect(leaf.subjectAltName).toContain('DNS:llmproxy-operator.llmproxy-system.svc');
    expect(planCertificates(first.state, policy, T0 + DAY)).toEqual([]);
  });

  it('rotates leaf and CA over a long run without a moment where the published bundle fails the served leaf', async () => {
    let { state } = await step({}, T0);
    const seen = new Set<string>();
    // Every other day: the overlap (one day) still separates stage, promote and drop.
    for (let day = 2; day <= 100; day += 2) {
      const now = T0 + day * DAY;
      const before = caBundleOf(state);
      const result = await step(state, now);
      result.kinds.forEach((k) => seen.add(k));
      // Clients still holding the old bundle verify the new leaf (replicas may serve either).
      expect(trusts(before, result.state.leaf?.certPem, now)).toBe(true);
      expect(trusts(caBundleOf(result.state), state.leaf?.certPem, now)).toBe(
        trusts(before, state.leaf?.certPem, now),
      );
      expect(trusts(caBundleOf(result.state), result.state.leaf?.certPem, now)).toBe(true);
      expect(splitBundle(caBundleOf(result.state)).length).toBeLessThanOrEqual(3);
      state = result.state;
    }
    expect([...seen].sort()).toEqual([
      'drop-previous-ca',
      'issue-leaf',
      'promote-next-ca',
      'stage-next-ca',
    ]);
  }, 30_000);

  it('re-issues a certificate whose names no longer match the Service', async () => {
    const { state } = await step({}, T0);
    const moved = { ...policy, dnsNames: serviceDnsNames('other', 'llmproxy-system') };
    expect(planCertificates(state, moved, T0 + DAY)).toEqual([
      { kind: 'issue-leaf', reason: 'the service names changed' },
    ]);
  });

  it('starts over from garbage or an expired CA', async () => {
    expect(planCertificates({ ca: { certPem: 'nope', keyPem: 'x' } }, policy, T0)[0]?.kind).toBe(
      'create-ca',
    );
    const { state } = await step({}, T0);
    expect(planCertificates(state, policy, T0 + 31 * DAY)).toEqual([
      { kind: 'create-ca', reason: 'the CA expired' },
    ]);
  });

  it('serves what the Secret holds, ours or cert-manager’s', async () => {
    const { state } = await step({}, T0);
    const { data } = secretFromState(state);
    expect(servingMaterial({ data })?.caBundle).toBe(caBundleOf(state));
    const certManager = {
      'tls.crt': data['tls.crt'] ?? '',
      'tls.key': data['tls.key'] ?? '',
      'ca.crt': data['ca.crt'] ?? '',
    };
    expect(servingMaterial({ data: certManager })?.cert).toBe(state.leaf?.certPem);
    expect(servingMaterial({ data: {} })).toBeUndefined();
  });
});
