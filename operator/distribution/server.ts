// The HTTPS endpoint sidecars hold open to receive their CompiledPolicy, and ack it on.
// Each stream belongs to one pod, proven by its bound token; what is pushed to it is whatever
// policyFor(pod) returns, so this module knows nothing about controllers or the compiler.
import { createHash, randomBytes } from 'node:crypto';
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CompiledPolicy } from '../../sidecar/policy/compiled.js';
import type { OperatorKey } from '../../sidecar/secrets/index.js';
import {
  ACK_PATH,
  LEASE_PATH,
  MAX_ACK_BYTES,
  MAX_LEASE_BYTES,
  SESSION_HEADER,
  STREAM_CONTENT_TYPE,
  WATCH_PATH,
  decodeAck,
  decodeLeaseRequest,
  errorMessage,
  encodeMessage,
  type Ack,
  type LeaseRequest,
  type LeaseResponse,
} from '../../sidecar/control/protocol.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import type { TokenReviewResult } from '../kube/index.js';
import {
  AuthError,
  bearerToken,
  TokenAuthenticator,
  type AuthFailureReason,
  type PodIdentity,
} from './auth.js';
import { Throttle, type Rate } from './throttle.js';

export interface DistributionOptions {
  host?: string;
  /** 0 picks a free port */
  port?: number;
  tls: { cert: string | Buffer; key: string | Buffer };
  reviewToken(token: string, audiences: string[]): Promise<TokenReviewResult>;
  /** The policy this pod should enforce now; undefined while it is not known yet. */
  policyFor(pod: PodIdentity): CompiledPolicy | undefined;
  /**
   * The keys to push with the policy just sent to this pod: only for providers that policy
   * grants. Pushed after the policy and whenever they change (notify, e.g. on a rotation).
   */
  keysFor?(pod: PodIdentity, policy: CompiledPolicy): OperatorKey[];
  /**
   * Whether this pod may be served at all: `forbid` for a pod known not to have opted in (no
   * injection status annotation), `unknown` while it is not in the caches yet. A forbidden pod
   * gets 403, and a stream opened while it was unknown is closed once it is known to be forbidden.
   */
  authorize?(pod: PodIdentity): 'allow' | 'forbid' | 'unknown';
  log: Logger;
  onAck?(pod: PodIdentity, ack: Ack): void;
  /** Spend reports and allowance requests (the budget ledger); 404 when absent. */
  lease?(pod: PodIdentity, request: LeaseRequest): Promise<LeaseResponse>;
  /** Answers GET /readyz (kubelet probe, no credentials, no details); /healthz is always ok. */
  ready?(): boolean;
  heartbeatMs?: number;
  /** Stream opens per pod (reconnect floods). */
  connectRate?: Rate;
  /** Acks per pod. */
  reportRate?: Rate;
  /** Spend reports and allowance requests per pod. */
  leaseRate?: Rate;
  /** Requests per remote address before authentication, to protect TokenReview. */
  preAuthRate?: Rate;
  maxStreamsPerPod?: number;
  /** A stream whose client does not read is cut when this much is queued for it. */
  maxQueuedBytes?: number;
}

export interface DistributionStats {
  streams: number;
  connects: number;
  authFailures: Record<AuthFailureReason, number>;
  /** All 403s; of them, pods that did not opt in to injection. */
  forbidden: number;
  notInjected: number;
  throttled: number;
  policiesSent: number;
  /** Key sets pushed (after a policy, a rotation or a lost grant). */
  keysSent: number;
  acks: number;
  nacks: number;
  leases: number;
  badRequests: number;
  slowConsumers: number;
}

export interface PodDeliveryState {
  streams: number;
  sent?: string;
  acked?: string;
  nacked: string[];
}

export interface DistributionServer {
  readonly url: string;
  readonly port: number;
  /** Re-evaluates policyFor for connected pods (all, or those matching) and pushes changes. */
  notify(filter?: (pod: PodIdentity) => boolean): void;
  podState(podUid: string): PodDeliveryState | undefined;
  stats(): DistributionStats;
  /** Swaps the serving certificate without dropping connections (rotation). */
  setCertificate(tls: { cert: string | Buffer; key: string | Buffer }): void;
  close(): Promise<void>;
}

interface Stream {
  res: http.ServerResponse;
  sent?: string;
  /** A digest of the keys message last pushed on this stream (a stream never holds values). */
  keysSent?: string;
  openedAt: number;
}

interface PodEntry {
  identity: PodIdentity;
  streams: Stream[];
  acked?: string;
  nacked: string[];
  lastSeen: number;
}

/** Every counter at zero: the server's starting point, and a base for tests of the exporters. */
export function emptyDistributionStats(): DistributionStats {
  return {
    streams: 0,
    connects: 0,
    authFailures: {
      missing_token: 0,
      invalid_token: 0,
      not_a_pod_token: 0,
      review_unavailable: 0,
    },
    forbidden: 0,
    notInjected: 0,
    throttled: 0,
    policiesSent: 0,
    keysSent: 0,
    acks: 0,
    nacks: 0,
    leases: 0,
    badRequests: 0,
    slowConsumers: 0,
  };
}

const MAX_NACKS_REMEMBERED = 32;
const IDLE_POD_FORGET_MS = 60 * 60_000;

export async function startDistributionServer(
  options: DistributionOptions,
): Promise<DistributionServer> {
  const { log } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreamsPerPod = options.maxStreamsPerPod ?? 2;
  const maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024;
  const auth = new TokenAuthenticator(options.reviewToken);
  const connectThrottle = new Throttle(options.connectRate ?? { perSecond: 0.2, burst: 10 });
  const reportThrottle = new Throttle(options.reportRate ?? { perSecond: 5, burst: 50 });
  const leaseThrottle = new Throttle(options.leaseRate ?? { perSecond: 20, burst: 100 });
  const preAuthThrottle = new Throttle(options.preAuthRate ?? { perSecond: 500, burst: 2000 });
  const pods = new Map<string, PodEntry>();
  const sessions = new Map<string, PodEntry>();
  const encoded = new WeakMap<CompiledPolicy, string>();
  const stats = emptyDistributionStats();

  const policyLine = (policy: CompiledPolicy): string => {
    // Many pods share one compiled object; serialize it once.
    let line = encoded.get(policy);
    if (!line) {
      line = encodeMessage({ type: 'policy', policy });
      encoded.set(policy, line);
    }
    return line;
  };

  const write = (stream: Stream, line: string): void => {
    if (stream.res.writableLength > maxQueuedBytes) {
      stats.slowConsumers++;
      stream.res.destroy();
      return;
    }
    stream.res.write(line);
  };

  const authorized = (identity: PodIdentity): 'allow' | 'forbid' | 'unknown' => {
    try {
      return options.authorize?.(identity) ?? 'allow';
    } catch (err) {
      log.error('authorize failed', { reason: errorMessage(err) });
      return 'unknown';
    }
  };

  const refuseNotInjected = (identity: PodIdentity): void => {
    stats.forbidden++;
    stats.notInjected++;
    log.warn('policy refused to a pod that did not opt in', {
      reason: 'not_injected',
      caller: identity.podName,
    });
  };

  const push = (entry: PodEntry, stream: Stream): void => {
    const verdict = authorized(entry.identity);
    if (verdict === 'forbid') {
      refuseNotInjected(entry.identity);
      stream.res.end();
      return;
    }
    // Not known yet: nothing is sent (fail-closed) until it is.
    if (verdict === 'unknown') return;
    let policy: CompiledPolicy | undefined;
    try {
      policy = options.policyFor(entry.identity);
    } catch (err) {
      log.error('policyFor failed', { reason: errorMessage(err) });
      return;
    }
    if (!policy || entry.nacked.includes(policy.version)) return;
    if (policy.version !== stream.sent) {
      stream.sent = policy.version;
      stats.policiesSent++;
      write(stream, policyLine(policy));
    }
    pushKeys(entry, stream, policy);
  };

  /** After the policy it belongs to, so the sidecar knows the providers the keys are for. */
  const pushKeys = (entry: PodEntry, stream: Stream, policy: CompiledPolicy): void => {
    if (!options.keysFor) return;
    let keys: OperatorKey[];
    try {
      keys = options.keysFor(entry.identity, policy);
    } catch (err) {
      log.error('keysFor failed', { reason: errorMessage(err) });
      return;
    }
    // Nothing to say to a stream that never had keys and still has none.
    if (keys.length === 0 && stream.keysSent === undefined) return;
    const line = encodeMessage({ type: 'keys', keys });
    const digest = createHash('sha256').update(line).digest('base64url');
    if (digest === stream.keysSent) return;
    stream.keysSent = digest;
    stats.keysSent++;
    write(stream, line);
  };

  const fail = (res: http.ServerResponse, status: number, code: string, headers = {}): void => {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { code } }));
  };

  const authenticate = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<PodIdentity | undefined> => {
    const now = Date.now();
    const address = req.socket.remoteAddress ?? 'unknown';
    const pre = preAuthThrottle.take(address, now);
    if (!pre.allowed) {
      stats.throttled++;
      fail(res, 429, 'throttled', { 'retry-after': Math.ceil(pre.retryAfterMs / 1000) });
      return undefined;
    }
    try {
      return await auth.authenticate(bearerToken(req.headers.authorization), now);
    } catch (err) {
      const reason = err instanceof AuthError ? err.reason : 'review_unavailable';
      stats.authFailures[reason]++;
      log.warn('sidecar authentication refused', { reason, route: req.url?.split('?')[0] });
      if (reason === 'review_unavailable') fail(res, 503, 'review_unavailable');
      else fail(res, 401, 'unauthenticated', { 'www-authenticate': 'Bearer' });
      return undefined;
    }
  };

  const entryFor = (identity: PodIdentity): PodEntry => {
    let entry = pods.get(identity.podUid);
    if (!entry) {
      entry = { identity, streams: [], nacked: [], lastSeen: Date.now() };
      pods.set(identity.podUid, entry);
    }
    entry.lastSeen = Date.now();
    return entry;
  };

  const handleWatch = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<void> => {
    const identity = await authenticate(req, res);
    if (!identity) return;
    // A pod may name itself (a cross-check); naming another pod is refused.
    const askedPod = url.searchParams.get('pod');
    const askedNamespace = url.searchParams.get('namespace');
    if (
      (askedPod !== null && askedPod !== identity.podName) ||
      (askedNamespace !== null && askedNamespace !== identity.namespace)
    ) {
      stats.forbidden++;
      log.warn('sidecar asked for another pod', { reason: 'forbidden', caller: identity.podName });
      return fail(res, 403, 'forbidden');
    }
    if (authorized(identity) === 'forbid') {
      refuseNotInjected(identity);
      return fail(res, 403, 'forbidden');
    }
    const limit = connectThrottle.take(identity.podUid, Date.now());
    if (!limit.allowed) {
      stats.throttled++;
      return fail(res, 429, 'throttled', {
        'retry-after': Math.ceil(limit.retryAfterMs / 1000),
      });
    }
    const entry = entryFor(identity);
    const stream: Stream = { res, openedAt: Date.now() };
    const session = randomBytes(24).toString('base64url');
    sessions.set(session, entry);
    entry.streams.push(stream);
    while (entry.streams.length > maxStreamsPerPod) entry.streams.shift()?.res.end();
    stats.connects++;
    stats.streams++;
    res.on('close', () => {
      sessions.delete(session);
      stats.streams--;
      entry.streams = entry.streams.filter((s) => s !== stream);
      entry.lastSeen = Date.now();
    });
    res.writeHead(200, {
      'content-type': STREAM_CONTENT_TYPE,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    req.socket.setNoDelay(true);
    write(stream, encodeMessage({ type: 'hello', heartbeatMs, pod: identity.podName, session }));
    push(entry, stream);
  };

  /**
   * The stream's session vouches for the pod without another TokenReview; without a live
   * session (the stream just closed), the token is checked as for a stream.
   */
  const identify = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<PodIdentity | undefined> => {
    const session = req.headers[SESSION_HEADER];
    const bySession = typeof session === 'string' ? sessions.get(session)?.identity : undefined;
    return bySession ?? (await authenticate(req, res));
  };

  const handleLease = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> => {
    const lease = options.lease;
    if (!lease) {
      req.resume();
      return fail(res, 404, 'not_found');
    }
    const identity = await identify(req, res);
    if (!identity) return;
    const verdict = authorized(identity);
    if (verdict !== 'allow') {
      req.resume();
      if (verdict === 'unknown') return fail(res, 503, 'not_ready', { 'retry-after': 1 });
      refuseNotInjected(identity);
      return fail(res, 403, 'forbidden');
    }
    const limit = leaseThrottle.take(identity.podUid, Date.now());
    if (!limit.allowed) {
      stats.throttled++;
      req.resume();
      return fail(res, 429, 'throttled', {
        'retry-after': Math.ceil(limit.retryAfterMs / 1000),
      });
    }
    const body = await readLimited(req, MAX_LEASE_BYTES);
    if (body === 'too_large') {
      stats.badRequests++;
      res.setHeader('connection', 'close');
      return fail(res, 413, 'request_too_large');
    }
    let request: LeaseRequest | undefined;
    try {
      request = decodeLeaseRequest(JSON.parse(body.toString('utf8')));
    } catch {
      request = undefined;
    }
    if (!request) {
      stats.badRequests++;
      log.warn('malformed lease request refused', {
        reason: 'invalid_request',
        caller: identity.podName,
      });
      return fail(res, 400, 'invalid_request');
    }
    stats.leases++;
    const answer = await lease(identity, request);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(answer));
  };

  const handleAck = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const identity = await identify(req, res);
    if (!identity) return;
    const limit = reportThrottle.take(identity.podUid, Date.now());
    if (!limit.allowed) {
      stats.throttled++;
      req.resume();
      return fail(res, 429, 'throttled', {
        'retry-after': Math.ceil(limit.retryAfterMs / 1000),
      });
    }
    const body = await readLimited(req, MAX_ACK_BYTES);
    if (body === 'too_large') {
      stats.badRequests++;
      res.setHeader('connection', 'close');
      return fail(res, 413, 'request_too_large');
    }
    let ack: Ack | undefined;
    try {
      ack = decodeAck(JSON.parse(body.toString('utf8')));
    } catch {
      ack = undefined;
    }
    if (!ack) {
      stats.badRequests++;
      return fail(res, 400, 'invalid_request');
    }
    const entry = entryFor(identity);
    if (ack.ok) {
      stats.acks++;
      entry.acked = ack.version;
    } else {
      stats.nacks++;
      if (!entry.nacked.includes(ack.version)) entry.nacked.push(ack.version);
      if (entry.nacked.length > MAX_NACKS_REMEMBERED) entry.nacked.shift();
      log.warn('sidecar rejected a policy', {
        caller: identity.podName,
        policyVersion: ack.version,
        reason: (ack.error ?? 'no reason given').slice(0, 200),
      });
    }
    try {
      options.onAck?.(identity, ack);
    } catch (err) {
      log.error('onAck failed', { reason: errorMessage(err) });
    }
    res.writeHead(204).end();
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'https://operator.invalid');
    let work: Promise<void>;
    if (url.pathname === WATCH_PATH && req.method === 'GET') work = handleWatch(req, res, url);
    else if (url.pathname === ACK_PATH && req.method === 'POST') work = handleAck(req, res);
    else if (url.pathname === LEASE_PATH && req.method === 'POST') work = handleLease(req, res);
    else if ((url.pathname === '/healthz' || url.pathname === '/readyz') && req.method === 'GET') {
      const ok = url.pathname === '/healthz' || (options.ready?.() ?? true);
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ok ? 'ok\n' : 'not ready\n');
      return;
    } else {
      stats.badRequests++;
      req.resume();
      fail(res, 404, 'not_found');
      return;
    }
    work.catch((err: unknown) => {
      log.error('distribution request failed', {
        reason: errorMessage(err),
      });
      fail(res, 500, 'internal_error');
    });
  };

  const server = https.createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      minVersion: 'TLSv1.3',
      maxHeaderSize: 32 * 1024,
    },
    handler,
  );
  server.headersTimeout = 10_000;
  // Keep idle ack connections open well past a heartbeat, so an ack after a policy change
  // does not pay a TLS handshake: with a thousand sidecars, that is a thousand at once.
  server.keepAliveTimeout = 10 * 60_000;
  server.requestTimeout = 15_000;
  server.on('tlsClientError', () => {
    // Handshake failures (old TLS versions, scanners) are routine; counting them is enough.
    stats.badRequests++;
  });

  const heartbeat = setInterval(() => {
    const line = encodeMessage({ type: 'heartbeat' });
    const now = Date.now();
    for (const [uid, entry] of pods) {
      for (const stream of entry.streams) write(stream, line);
      if (entry.streams.length === 0 && now - entry.lastSeen > IDLE_POD_FORGET_MS) pods.delete(uid);
    }
  }, heartbeatMs);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  log.info('policy distribution listening', { listen: `${host}:${address.port}` });

  return {
    url: `https://${host}:${address.port}`,
    port: address.port,
    notify(filter) {
      for (const entry of pods.values()) {
        if (entry.streams.length === 0 || (filter && !filter(entry.identity))) continue;
        for (const stream of entry.streams) push(entry, stream);
      }
    },
    podState(podUid) {
      const entry = pods.get(podUid);
      if (!entry) return undefined;
      return {
        streams: entry.streams.length,
        sent: entry.streams.at(-1)?.sent,
        acked: entry.acked,
        nacked: [...entry.nacked],
      };
    },
    stats: () => ({ ...stats, authFailures: { ...stats.authFailures } }),
    setCertificate(tls) {
      server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.3' });
    },
    async close() {
      clearInterval(heartbeat);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const entry of pods.values()) for (const stream of entry.streams) stream.res.end();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Reads a request body up to `max` bytes; beyond that stops reading and says so. */
async function readLimited(req: http.IncomingMessage, max: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return 'too_large';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) return 'too_large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
