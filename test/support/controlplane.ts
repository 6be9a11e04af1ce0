// A real etcd + kube-apiserver for the tests, started the way Kubebuilder's envtest does it.
//
// The binaries are built once from pinned Go modules by test/controlplane/build.sh
// (`make controlplane`) into ${LLMPROXY_CACHE:-~/.cache/llmproxy}/bin.
//
// What runs, and what does not:
// - etcd (plain HTTP on loopback, fsync off) and kube-apiserver (HTTPS on loopback) only.
//   There is NO kube-controller-manager and NO scheduler, so:
//   - namespaces get no `default` ServiceAccount: create every ServiceAccount you need yourself
//     before calling tokenFor() (the TokenRequest API itself works without the controller);
//   - a pod-bound token (tokenFor(..., { boundPod })) needs a real Pod object whose
//     spec.serviceAccountName is that ServiceAccount: create it; it stays Pending, which is fine;
//   - deleted namespaces stay Terminating forever, Deployments create no pods, nothing is
//     garbage-collected. Use a fresh namespace per test instead of cleaning up.
// - The ServiceAccount admission plugin is disabled (as in envtest), so pods are accepted without
//   an existing ServiceAccount and get no auto-mounted token volume. Mutating and validating
//   admission webhooks are enabled (upstream defaults).
// - Authorization is RBAC. The admin kubeconfig authenticates with a client certificate in the
//   group system:masters; kubeconfigFor()/kubectl({ user }) use client certificates signed by the
//   same client CA (CN = user name, O = groups), so tests can prove what RBAC allows.
// - Service-account tokens are accepted for the audiences `llmproxy.io` and the API server's own
//   `https://kubernetes.default.svc.cluster.local`.
//
// Each instance lives in a fresh temp dir (llmproxy-cp-*) that is removed on stop(), on process
// exit and on SIGINT/SIGTERM/SIGHUP. A dir left behind by a SIGKILLed run is found by its
// owner.pid on the next start: its orphaned etcd/kube-apiserver are killed and the dir removed.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as k8s from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface KubeUser {
  name: string;
  groups?: string[];
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  apiServerURL: string;
  /** admin kubeconfig file written to disk (group system:masters) */
  kubeconfigPath: string;
  /** the API server's serving CA (PEM) */
  caPem: string;
  /** where kubectl and helm live, for spawning them (`${binDir}/kubectl`, `${binDir}/helm`) */
  binDir: string;
  /** process ids, for tests that need to kill one */
  pids: { etcd: number; apiserver: number };
  kubectl(
    args: string[],
    opts?: { input?: string; user?: KubeUser; timeoutMs?: number },
  ): Promise<KubectlResult>;
  /**
   * A token from the TokenRequest API (audiences default to `llmproxy.io`, expiry to an hour,
   * at least 600 s). The ServiceAccount (and a bound Pod) must exist.
   */
  tokenFor(
    namespace: string,
    serviceAccount: string,
    opts?: {
      audiences?: string[];
      boundPod?: { name: string; uid: string };
      expirationSeconds?: number;
    },
  ): Promise<string>;
  /** Path of a kubeconfig authenticating as that user (client cert signed by the client CA). */
  kubeconfigFor(user: KubeUser): Promise<string>;
  /** A @kubernetes/client-node KubeConfig for the admin user (or the given user). */
  kubeConfig(user?: KubeUser): Promise<k8s.KubeConfig>;
  /** Kills both processes and removes the data dirs; idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: (line: string) => void;
  /** How long to wait for etcd and /readyz each (default 90 s). */
  readyTimeoutMs?: number;
  /** For tests of the harness: where free ports come from. */
  pickPort?: () => Promise<number>;
  /** For tests of the harness: extra etcd flags (name without dashes -> value). */
  etcdFlags?: Record<string, string>;
}

/** What another process (a jest worker) needs to use a running control plane. */
export interface ControlPlaneState {
  dir: string;
  apiServerURL: string;
  kubeconfigPath: string;
  caPem: string;
  binDir: string;
}

export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
}

/** Env var through which the e2e globalSetup tells jest workers where its state file is. */
export const E2E_STATE_ENV = 'LLMPROXY_E2E_CONTROLPLANE';
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const API_AUDIENCES = ['llmproxy.io', SERVICE_ACCOUNT_ISSUER];
const DIR_PREFIX = 'llmproxy-cp-';
const TAIL_LINES = 40;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Pinned versions, from the same file build.sh reads. */
export function controlPlaneVersions(): { kubernetes: string; etcd: string; helm: string } {
  const text = readFileSync(path.join(repoRoot, 'test/controlplane/versions.env'), 'utf8');
  const get = (key: string): string => {
    const m = new RegExp(`^${key}=(\\S+)`, 'm').exec(text);
    if (!m?.[1]) throw new ControlPlaneError(`versions.env has no ${key}`);
    return m[1];
  };
  return {
    kubernetes: get('KUBERNETES_VERSION'),
    etcd: get('ETCD_VERSION'),
    helm: get('HELM_VERSION'),
  };
}

export function controlPlaneBinDir(): string {
  const cache = process.env['LLMPROXY_CACHE'] || path.join(os.homedir(), '.cache', 'llmproxy');
  return path.join(cache, 'bin');
}

function binaries(): { binDir: string; etcd: string; apiserver: string; kubectl: string } {
  const binDir = controlPlaneBinDir();
  const v = controlPlaneVersions();
  const bins = {
    binDir,
    etcd: path.join(binDir, `etcd-${v.etcd}`),
    apiserver: path.join(binDir, `kube-apiserver-${v.kubernetes}`),
    kubectl: path.join(binDir, `kubectl-${v.kubernetes}`),
  };
  const missing = [bins.etcd, bins.apiserver, bins.kubectl].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new ControlPlaneError(
      `control plane binaries missing (${missing.map((p) => path.basename(p)).join(', ')}); ` +
        `run \`make controlplane\` (builds them once into ${binDir})`,
    );
  }
  return bins;
}

// ---------------------------------------------------------------------------------------------
// Certificates

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

interface Issued {
  certPem: string;
  keyPem: string;
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

function keyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // positive
  return b.toString('hex');
}

async function newCA(cn: string): Promise<Issued> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: new x509.Name([{ CN: [cn] }]),
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: EC,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: keyPem(keys.privateKey) };
}

async function issue(
  ca: Issued,
  subject: x509.JsonName,
  usage: 'server' | 'client',
): Promise<Issued> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' }),
    EC,
    false,
    ['sign'],
  );
  const keys = await newKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      [usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (usage === 'server') {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: new x509.Name(subject),
    issuer: caCert.subjectName,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: EC,
    signingKey: caKey,
    publicKey: keys.publicKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: keyPem(keys.privateKey) };
}

function userSubject(user: KubeUser): x509.JsonName {
  return [{ CN: [user.name] }, ...(user.groups ?? []).map((g) => ({ O: [g] }))];
}

function kubeconfigYaml(server: string, caPem: string, user: string, client: Issued): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'llmproxy-test', cluster: { server, 'certificate-authority-data': b64(caPem) } },
    ],
    users: [
      {
        name: user,
        user: {
          'client-certificate-data': b64(client.certPem),
          'client-key-data': b64(client.keyPem),
        },
      },
    ],
    contexts: [{ name: 'llmproxy-test', context: { cluster: 'llmproxy-test', user } }],
    'current-context': 'llmproxy-test',
  };
  return JSON.stringify(doc, null, 2) + '\n'; // JSON is YAML
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A child process with its stderr/stdout kept as a short tail for error messages. */
class Proc {
  readonly tail: string[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    bin: string,
    args: string[],
    log: ((line: string) => void) | undefined,
  ) {
    this.child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        this.tail.push(line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
        log?.(`[${name}] ${line}`);
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.exit ??= { code: -1, signal: null };
        this.tail.push(`spawn failed: ${err.message}`);
        resolve();
      });
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  describeExit(): string {
    if (!this.exit) return `${this.name} is running`;
    return this.exit.signal
      ? `${this.name} was killed by ${this.exit.signal}`
      : `${this.name} exited with code ${this.exit.code}`;
  }

  tailText(lines = 20): string {
    return this.tail.slice(-lines).join('\n');
  }

  addressInUse(): boolean {
    return this.tail.some((l) => /address already in use/i.test(l));
  }

  killNow(): void {
    if (!this.exit && this.child.pid) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async stop(graceMs = 5000): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killNow(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject()));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface HttpResult {
  status: number;
  body: string;
}

function httpRequest(
  url: string,
  opts: { method?: string; body?: string; tls?: { ca: string; cert: string; key: string } },
  timeoutMs = 10_000,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(url),
      {
        method: opts.method ?? 'GET',
        ...(opts.tls ?? {}),
        headers: opts.body
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(opts.body) }
          : {},
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

function httpGetPlain(url: string, timeoutMs = 2000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Polls until check() is true; fails fast when a watched process exits. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  watched: Proc[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    const dead = watched.find((p) => p.exit);
    if (dead) {
      throw new ControlPlaneError(
        `${dead.describeExit()} before ${what}; last output of ${dead.name}:\n${dead.tailText()}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const tails = watched.map((p) => `--- ${p.name}:\n${p.tailText()}`).join('\n');
      throw new ControlPlaneError(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastErr ? ` (last error: ${lastErr})` : '') +
          `; last output:\n${tails}`,
      );
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// Cleanup: on stop(), on process exit and signals, and of dirs left by killed runs

const live = new Set<{ procs: Proc[]; dir: string }>();
let hooksInstalled = false;

function cleanupAllSync(): void {
  for (const inst of live) {
    for (const p of inst.procs) p.killNow();
    rmSync(inst.dir, { recursive: true, force: true });
  }
  live.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      cleanupAllSync();
      process.removeListener(sig, handler);
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** Whether a process runs (a zombie nobody reaped does not count). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true; // no procfs: trust kill(0)
  }
}

/** Removes control-plane dirs whose owning process is gone, killing their orphaned servers. */
export function cleanStaleControlPlanes(log?: (line: string) => void): string[] {
  const removed: string[] = [];
  const tmp = os.tmpdir();
  let entries: string[];
  try {
    entries = readdirSync(tmp).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const dir = path.join(tmp, entry);
    const read = (f: string): number => {
      try {
        return Number(readFileSync(path.join(dir, f), 'utf8').trim());
      } catch {
        return NaN;
      }
    };
    const owner = read('owner.pid');
    if (Number.isNaN(owner)) continue; // being created right now, or not ours
    if (processAlive(owner)) continue;
    for (const f of ['etcd.pid', 'kube-apiserver.pid']) {
      const pid = read(f);
      if (!processAlive(pid)) continue;
      // Only kill it if it is still the server this dir started (pids get reused).
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmdline.includes(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
          log?.(`[controlplane] killed orphaned ${f.replace('.pid', '')} (pid ${pid})`);
        } catch {
          // gone meanwhile
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
    log?.(`[controlplane] removed stale ${dir} (owner pid ${owner} is gone)`);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Start

async function startOnce(
  bins: ReturnType<typeof binaries>,
  opts: StartOptions,
  pickPort: () => Promise<number>,
): Promise<{ cp: ControlPlane; retryable?: never } | { cp?: never; retryable: Error }> {
  const log = opts.log;
  const timeout = opts.readyTimeoutMs ?? 90_000;
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  const inst = { procs: [] as Proc[], dir };
  live.add(inst);
  installExitHooks();
  await writeFile(path.join(dir, 'owner.pid'), `${process.pid}\n`);
  const cleanup = async (): Promise<void> => {
    // The API server first, so it does not spend its last seconds retrying a stopped etcd.
    for (const p of [...inst.procs].reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
    live.delete(inst);
  };

  try {
    const pki = path.join(dir, 'pki');
    await mkdir(pki, { mode: 0o700 });
    const [servingCA, clientCA, saKeys] = await Promise.all([
      newCA('llmproxy-test-serving-ca'),
      newCA('llmproxy-test-client-ca'),
      newKeys(),
    ]);
    const serving = await issue(servingCA, [{ CN: ['kube-apiserver'] }], 'server');
    const admin = await issue(
      clientCA,
      userSubject({ name: 'admin', groups: ['system:masters'] }),
      'client',
    );
    const files: Record<string, string> = {
      'serving-ca.crt': servingCA.certPem,
      'client-ca.crt': clientCA.certPem,
      'client-ca.key': clientCA.keyPem,
      'apiserver.crt': serving.certPem,
      'apiserver.key': serving.keyPem,
      'sa.key': keyPem(saKeys.privateKey),
      'sa.pub': KeyObject.from(saKeys.publicKey).export({ type: 'spki', format: 'pem' }).toString(),
    };
    for (const [name, content] of Object.entries(files)) {
      await writeFile(path.join(pki, name), content, { mode: 0o600 });
    }

    const [etcdPort, peerPort, apiPort] = [await pickPort(), await pickPort(), await pickPort()];
    const etcdURL = `http://127.0.0.1:${etcdPort}`;
    const peerURL = `http://127.0.0.1:${peerPort}`;
    const etcdFlags: Record<string, string> = {
      name: 'llmproxy-test',
      'data-dir': path.join(dir, 'etcd'),
      'listen-client-urls': etcdURL,
      'advertise-client-urls': etcdURL,
      'listen-peer-urls': peerURL,
      'initial-advertise-peer-urls': peerURL,
      'initial-cluster': `llmproxy-test=${peerURL}`,
      'unsafe-no-fsync': 'true',
      'log-level': 'warn',
      ...opts.etcdFlags,
    };
    const etcd = new Proc(
      'etcd',
      bins.etcd,
      Object.entries(etcdFlags).map(([k, v]) => `--${k}=${v}`),
      log,
    );
    inst.procs.push(etcd);
    await writeFile(path.join(dir, 'etcd.pid'), `${etcd.pid}\n`);
    try {
      await waitFor(
        'etcd was healthy',
        async () => {
          const r = await httpGetPlain(`${etcdURL}/health`);
          return r.status === 200 && r.body.includes('"health":"true"');
        },
        [etcd],
        timeout,
      );
    } catch (err) {
      if (etcd.addressInUse()) {
        await cleanup();
        return { retryable: err as Error };
      }
      throw err;
    }

    const apiServerURL = `https://127.0.0.1:${apiPort}`;
    const apiFlags: Record<string, string> = {
      'advertise-address': '127.0.0.1',
      'bind-address': '127.0.0.1',
      'secure-port': String(apiPort),
      'cert-dir': path.join(dir, 'certs'),
      'tls-cert-file': path.join(pki, 'apiserver.crt'),
      'tls-private-key-file': path.join(pki, 'apiserver.key'),
      'client-ca-file': path.join(pki, 'client-ca.crt'),
      'etcd-servers': etcdURL,
      'service-cluster-ip-range': '10.0.0.0/24',
      'service-account-issuer': SERVICE_ACCOUNT_ISSUER,
      'service-account-key-file': path.join(pki, 'sa.pub'),
      'service-account-signing-key-file': path.join(pki, 'sa.key'),
      'api-audiences': API_AUDIENCES.join(','),
      'authorization-mode': 'RBAC',
      'allow-privileged': 'true',
      'enable-admission-plugins': 'MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
      'disable-admission-plugins': 'ServiceAccount',
      'enable-priority-and-fairness': 'false',
      profiling: 'false',
      v: '0',
    };
    const apiserver = new Proc(
      'kube-apiserver',
      bins.apiserver,
      Object.entries(apiFlags).map(([k, v]) => `--${k}=${v}`),
      log,
    );
    inst.procs.push(apiserver);
    await writeFile(path.join(dir, 'kube-apiserver.pid'), `${apiserver.pid}\n`);

    const adminTLS = { ca: servingCA.certPem, cert: admin.certPem, key: admin.keyPem };
    try {
      await waitFor(
        'kube-apiserver was ready (/readyz)',
        async () =>
          (await httpRequest(`${apiServerURL}/readyz`, { tls: adminTLS }, 3000)).status === 200,
        [etcd, apiserver],
        timeout,
      );
    } catch (err) {
      if (apiserver.addressInUse()) {
        await cleanup();
        return { retryable: err as Error };
      }
      throw err;
    }

    const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    await writeFile(
      kubeconfigPath,
      kubeconfigYaml(apiServerURL, servingCA.certPem, 'admin', admin),
      { mode: 0o600 },
    );

    const state: ControlPlaneState = {
      dir,
      apiServerURL,
      kubeconfigPath,
      caPem: servingCA.certPem,
      binDir: bins.binDir,
    };
    let stopping: Promise<void> | undefined;
    const cp = attachControlPlane(state, {
      pids: { etcd: etcd.pid, apiserver: apiserver.pid },
      stop: () => (stopping ??= cleanup()),
      health: () => {
        const dead = [etcd, apiserver].find((p) => p.exit);
        return dead
          ? `${dead.describeExit()} (unexpectedly); last output:\n${dead.tailText()}`
          : undefined;
      },
    });
    log?.(`[controlplane] ready at ${apiServerURL} (data in ${dir})`);
    return { cp };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Starts etcd and kube-apiserver on free loopback ports and waits for /readyz.
 * Retries with new ports when one turns out to be taken.
 */
export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const bins = binaries();
  cleanStaleControlPlanes(opts.log);
  const pickPort = opts.pickPort ?? freePort;
  const attempts = 3;
  let last: Error | undefined;
  for (let i = 1; i <= attempts; i++) {
    const started = Date.now();
    const res = await startOnce(bins, opts, pickPort);
    if (res.cp) {
      opts.log?.(`[controlplane] started in ${Date.now() - started} ms`);
      return res.cp;
    }
    last = res.retryable;
    opts.log?.(`[controlplane] port collision on attempt ${i}, retrying with new ports`);
  }
  throw new ControlPlaneError(
    `could not start the control plane after ${attempts} attempts (ports kept colliding): ${last?.message}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Using a running control plane (also from a jest worker that did not start it)

interface Owner {
  pids: { etcd: number; apiserver: number };
  stop: () => Promise<void>;
  /** A message when a server died, so callers fail fast instead of waiting for timeouts. */
  health: () => string | undefined;
}

/** Health of a control plane another process owns, from the pid files in its dir. */
function pidFileOwner(dir: string): Owner {
  const read = (name: string): number => {
    try {
      return Number(readFileSync(path.join(dir, `${name}.pid`), 'utf8').trim());
    } catch {
      return 0;
    }
  };
  const pids = { etcd: read('etcd'), apiserver: read('kube-apiserver') };
  return {
    pids,
    stop: async () => undefined, // the owner (globalTeardown) stops it
    health: () => {
      if (!existsSync(dir)) return `its data dir ${dir} is gone (stopped by its owner?)`;
      const dead = (['etcd', 'apiserver'] as const).find((n) => !processAlive(pids[n]));
      return dead
        ? `${dead === 'etcd' ? 'etcd' : 'kube-apiserver'} (pid ${pids[dead]}) is not running`
        : undefined;
    },
  };
}

/** Uses a running control plane; without an owner (another process started it) stop() is a no-op. */
export function attachControlPlane(state: ControlPlaneState, owner?: Owner): ControlPlane {
  const pki = path.join(state.dir, 'pki');
  const userConfigs = new Map<string, Promise<string>>();
  const kubectlBin = binaries().kubectl;
  const run = owner ?? pidFileOwner(state.dir);

  const ensureHealthy = (): void => {
    const problem = run.health();
    if (problem) throw new ControlPlaneError(`control plane is down: ${problem}`);
  };

  const adminTLS = async (): Promise<{ ca: string; cert: string; key: string }> => {
    const cfg = JSON.parse(await readFile(state.kubeconfigPath, 'utf8')) as {
      users: { user: Record<string, string> }[];
    };
    const u = cfg.users[0]?.user ?? {};
    const dec = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString();
    return {
      ca: state.caPem,
      cert: dec(u['client-certificate-data']),
      key: dec(u['client-key-data']),
    };
  };

  const kubeconfigFor = (user: KubeUser): Promise<string> => {
    const key = JSON.stringify([user.name, [...(user.groups ?? [])].sort()]);
    let p = userConfigs.get(key);
    if (!p) {
      p = (async () => {
        const ca = {
          certPem: await readFile(path.join(pki, 'client-ca.crt'), 'utf8'),
          keyPem: await readFile(path.join(pki, 'client-ca.key'), 'utf8'),
        };
        const client = await issue(ca, userSubject(user), 'client');
        const safe = user.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
        const file = path.join(
          state.dir,
          `user-${safe}-${process.pid}-${randomBytes(4).toString('hex')}.kubeconfig`,
        );
        await writeFile(file, kubeconfigYaml(state.apiServerURL, state.caPem, user.name, client), {
          mode: 0o600,
        });
        return file;
      })();
      userConfigs.set(key, p);
    }
    return p;
  };

  const kubectl: ControlPlane['kubectl'] = async (args, opts = {}) => {
    ensureHealthy();
    const kubeconfig = opts.user ? await kubeconfigFor(opts.user) : state.kubeconfigPath;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const child = spawn(kubectlBin, [`--kubeconfig=${kubeconfig}`, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, KUBECONFIG: kubeconfig },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        stderr += `\n[controlplane] kubectl ${args.join(' ')} killed after ${timeoutMs} ms`;
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const problem = run.health();
        if (problem && code !== 0) stderr += `\n[controlplane] control plane is down: ${problem}`;
        resolve({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });
  };

  const tokenFor: ControlPlane['tokenFor'] = async (namespace, serviceAccount, opts = {}) => {
    ensureHealthy();
    const body = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: opts.audiences ?? ['llmproxy.io'],
        expirationSeconds: opts.expirationSeconds ?? 3600,
        ...(opts.boundPod
          ? {
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: opts.boundPod.name,
                uid: opts.boundPod.uid,
              },
            }
          : {}),
      },
    };
    const url =
      `${state.apiServerURL}/api/v1/namespaces/${encodeURIComponent(namespace)}` +
      `/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`;
    const res = await httpRequest(url, {
      method: 'POST',
      body: JSON.stringify(body),
      tls: await adminTLS(),
    });
    if (res.status === 404) {
      throw new ControlPlaneError(
        `TokenRequest for ${namespace}/${serviceAccount}: not found. There is no ` +
          `controller-manager here: create the ServiceAccount (and a bound Pod) first.`,
      );
    }
    if (res.status !== 201 && res.status !== 200) {
      let message = `HTTP ${res.status}`;
      try {
        message = (JSON.parse(res.body) as { message?: string }).message ?? message;
      } catch {
        // not JSON
      }
      throw new ControlPlaneError(`TokenRequest for ${namespace}/${serviceAccount}: ${message}`);
    }
    const token = (JSON.parse(res.body) as { status?: { token?: string } }).status?.token;
    if (!token) throw new ControlPlaneError('TokenRequest returned no token');
    return token;
  };

  const kubeConfig = async (user?: KubeUser): Promise<k8s.KubeConfig> => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(user ? await kubeconfigFor(user) : state.kubeconfigPath);
    return kc;
  };

  return {
    apiServerURL: state.apiServerURL,
    kubeconfigPath: state.kubeconfigPath,
    caPem: state.caPem,
    binDir: state.binDir,
    pids: run.pids,
    kubectl,
    tokenFor,
    kubeconfigFor,
    kubeConfig,
    stop: run.stop,
  };
}
