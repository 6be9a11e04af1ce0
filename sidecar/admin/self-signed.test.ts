import { describe, expect, it } from '@jest/globals';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { selfSignedCertificate } from './self-signed.js';

describe('selfSignedCertificate', () => {
  it('makes a key and a certificate that belong together and are valid now', async () => {
    const now = Date.now();
    const { key, cert } = await selfSignedCertificate('llmproxy-sidecar', now);
    const parsed = new X509Certificate(cert);
    expect(parsed.subject).toBe('CN=llmproxy-sidecar');
    expect(parsed.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(new Date(parsed.validFrom).getTime()).toBeLessThanOrEqual(now);
    expect(new Date(parsed.validTo).getTime()).toBeGreaterThan(now + 300 * 24 * 3600 * 1000);
  });
});
