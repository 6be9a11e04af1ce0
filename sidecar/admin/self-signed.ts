// A throwaway certificate for the probe listener on the pod IP. Kubelet does not verify probe
// certificates, but every listener outside loopback still speaks TLS 1.3 only.
import { webcrypto } from 'node:crypto';

type SelfSignedParams = Parameters<
  (typeof import('@peculiar/x509'))['X509CertificateGenerator']['createSelfSigned']
>[0];

export interface KeyAndCert {
  key: string;
  cert: string;
}

/** An ECDSA P-256 key and a self-signed certificate valid for a year, made in memory at startup. */
export async function selfSignedCertificate(commonName: string, now: number): Promise<KeyAndCert> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex'),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 365 * 24 * 3600 * 1000),
    signingAlgorithm: algorithm,
    keys: keys as unknown as SelfSignedParams['keys'],
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`;
  return { key, cert: cert.toString('pem') };
}
