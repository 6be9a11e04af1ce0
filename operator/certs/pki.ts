// Key and certificate generation for the operator's own CA and serving certificate (ECDSA
// P-256, the curve every TLS 1.3 stack supports). Only this file knows @peculiar/x509.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, createHash, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Certificates start a little in the past so that a skewed clock elsewhere still accepts them. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface CertInfo {
  notBefore: number;
  notAfter: number;
  /** SHA-256 of the DER, hex: tells certificates apart. */
  fingerprint: string;
  /** The issuer's key identifier, hex: equals the signing CA's subjectKeyId. */
  authorityKeyId?: string;
  subjectKeyId?: string;
  dnsNames: string[];
  isCa: boolean;
}

export async function createCa(
  commonName: string,
  now: number,
  lifetimeMs: number,
): Promise<KeyPairPem> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: new x509.Name([{ CN: [commonName] }]),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + lifetimeMs),
    signingAlgorithm: EC,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: exportKey(keys.privateKey) };
}

export async function createServingCert(
  ca: KeyPairPem,
  dnsNames: string[],
  now: number,
  lifetimeMs: number,
  ips: string[] = [],
): Promise<KeyPairPem> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importKey(ca.keyPem);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: new x509.Name([{ CN: [dnsNames[0] ?? 'llmproxy-operator'] }]),
    issuer: caCert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(Math.min(now + lifetimeMs, caCert.notAfter.getTime())),
    signingAlgorithm: EC,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: exportKey(keys.privateKey) };
}

/** What the planner needs to know about a certificate; undefined when it does not parse. */
export function inspect(pem: string | undefined): CertInfo | undefined {
  if (!pem) return undefined;
  try {
    const cert = new x509.X509Certificate(pem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const basic = cert.getExtension(x509.BasicConstraintsExtension);
    return {
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      fingerprint: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
      authorityKeyId: aki?.keyId,
      subjectKeyId: ski?.keyId,
      dnsNames: (san?.names.items ?? []).filter((n) => n.type === 'dns').map((n) => n.value),
      isCa: basic?.ca === true,
    };
  } catch {
    return undefined;
  }
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

function exportKey(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function importKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString('hex');
}
