// Managed mode: the sidecar's connection to the operator. It holds the policy stream open,
// validates each pushed policy with the contract's own parser, acks or nacks it, and hands
// good ones to the proxy. Fail-closed and fail-static are the caller's to enforce, from
// onPolicy and state(): before the first policy nothing is allowed; when the operator is
// away the last good policy stays in force while this reconnects with jittered backoff.
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type http from 'node:http';
import { parseCompiledPolicy, type CompiledPolicy } from '../policy/compiled.js';
import type { OperatorKey } from '../secrets/index.js';
import type { Logger } from '../telemetry/log.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import {
  ACK_PATH,
  LEASE_PATH,
  MAX_ACK_ERROR_CHARS,
  SESSION_HEADER,
  WATCH_PATH,
  LineDecoder,
  decodeLeaseResponse,
  decodeServerMessage,
  errorMessage,
  truncate,
  type Ack,
  type LeaseRequest,
  type LeaseResponse,
} from './protocol.js';

export interface OperatorClientOptions {
  /** https://llmproxy-operator.llmproxy-system.svc:8443 */
  url: string;
  /** The projected service-account token (audience llmproxy.io); re-read on every connect. */
  tokenFile: string;
  /** The CA that signed the operator's serving certificate. */
  caFile: string;
  log: Logger;
  onPolicy(policy: CompiledPolicy): void;
  /** Keys the operator pushed for `fetchFrom: operator` providers (the whole set each time). */
  onKeys?(keys: OperatorKey[]): void;
  /** Sent as a cross-check; the operator refuses a name that is not the token's own pod. */
  podName?: string;
  backoff?: BackoffOptions;
  /** How long to wait for the stream's first message. */
  connectTimeoutMs?: number;
  random?: () => number;
}

export interface OperatorConnectionState {
  connected: boolean;
  /** the version in force, undefined until the first good policy (fail-closed) */
  policyVersion?: string;
  policyReceivedAt?: number;
  /** last time the operator confirmed the policy is current (a message on a live stream) */
  confirmedAt?: number;
  connects: number;
  failures: number;
  rejected: number;
  lastError?: string;
}

export interface OperatorConnection {
  close(): Promise<void>;
  state(): OperatorConnectionState;
  /** Milliseconds since the operator last confirmed the policy in force; undefined without one. */
  policyAge(now?: number): number | undefined;
  /** Sends spend reports and asks for budget allowances (one attempt; the caller retries). */
  lease(request: LeaseRequest): Promise<LeaseResponse>;
}

const HEARTBEAT_MISSES = 3;
const MAX_LEASE_RESPONSE_BYTES = 256 * 1024;
const ACK_ATTEMPTS = 4;
const ACK_BACKOFF = { baseMs: 250, maxMs: 2000 };
/**
 * How long to wait for the stream's first message. Generous: an operator busy with a
 * reconnect storm answers slowly, and giving up early only feeds the storm.
 */
const CONNECT_TIMEOUT_MS = 30_000;

export function connectToOperator(options: OperatorClientOptions): OperatorConnection {
  const { log } = options;
  const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  const random = options.random ?? Math.random;
  const base = new URL(options.url);
  if (base.protocol !== 'https:') throw new Error('--operator-url must be https');
  const agent = new https.Agent({ keepAlive: true, minVersion: 'TLSv1.3', maxSockets: 4 });
  const state: OperatorConnectionState = {
    connected: false,
    connects: 0,
    failures: 0,
    rejected: 0,
  };
  let closed = false;
  let current: http.ClientRequest | undefined;
  /** the live stream's session, which lets acks skip a TokenReview; never logged */
  let session: string | undefined;
  let streamCredentials: { token: string; ca: Buffer } | undefined;
  let wake: (() => void) | undefined;

  const credentials = async (): Promise<{ token: string; ca: Buffer }> => {
    const [token, ca] = await Promise.all([
      readFile(options.tokenFile, 'utf8'),
      readFile(options.caFile),
    ]);
    return { token: token.trim(), ca };
  };

  const postAck = async (ack: Ack): Promise<number> => {
    // The credentials of the live stream: read at connect (the kubelet rotates the token
    // file, a connect picks that up); re-reading them for every ack would only add latency.
    const { token, ca } = streamCredentials ?? (await credentials());
    const body = JSON.stringify(ack);
    return new Promise<number>((resolve, reject) => {
      const req = https.request(new URL(ACK_PATH, base), {
        method: 'POST',
        agent,
        ca,
        minVersion: 'TLSv1.3',
        headers: {
          authorization: `Bearer ${token}`,
          ...(session ? { [SESSION_HEADER]: session } : {}),
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        timeout: 10_000,
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('ack timed out')));
      req.on('error', reject);
      req.end(body);
    });
  };

  const postLease = async (request: LeaseRequest): Promise<LeaseResponse> => {
    const { token, ca } = streamCredentials ?? (await credentials());
    const body = JSON.stringify(request);
    const { status, text } = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const req = https.request(new URL(LEASE_PATH, base), {
          method: 'POST',
          agent,
          ca,
          minVersion: 'TLSv1.3',
          headers: {
            authorization: `Bearer ${token}`,
            ...(session ? { [SESSION_HEADER]: session } : {}),
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
          timeout: 10_000,
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_LEASE_RESPONSE_BYTES) res.destroy(new Error('lease answer too large'));
            else chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('lease request timed out')));
        req.on('error', reject);
        req.end(body);
      },
    );
    if (status !== 200) throw new Error(`lease request answered ${status}`);
    let decoded: LeaseResponse | undefined;
    try {
      decoded = decodeLeaseResponse(JSON.parse(text));
    } catch {
      decoded = undefined;
    }
    if (!decoded) throw new Error('lease answer is malformed');
    return decoded;
  };

  /**
   * Delivers an ack, retrying transient failures (a busy operator, a reset connection): the
   * operator tracks delivery by acks, and a lost one would leave the pod looking stale.
   */
  const sendAck = async (ack: Ack): Promise<void> => {
    let problem = 'unknown error';
    for (let attempt = 0; attempt < ACK_ATTEMPTS && !closed; attempt++) {
      if (attempt > 0) await delay(backoffDelay(attempt - 1, ACK_BACKOFF, random()));
      try {
        const status = await postAck(ack);
        if (status === 204) return;
        problem = `ack answered ${status}`;
        // 4xx other than throttling will not get better by retrying.
        if (status >= 400 && status < 500 && status !== 429) break;
      } catch (err) {
        problem = errorMessage(err);
      }
    }
    log.warn('policy ack not delivered', { reason: problem, policyVersion: ack.version });
  };

  const receivePolicy = (raw: CompiledPolicy): void => {
    const stated = typeof raw.version === 'string' ? raw.version.slice(0, 128) : 'unknown';
    let policy: CompiledPolicy;
    try {
      policy = parseCompiledPolicy(raw);
    } catch (err) {
      state.rejected++;
      log.error('operator sent an invalid policy; keeping the previous one', {
        policyVersion: stated,
        reason: errorMessage(err),
      });
      void sendAck({
        version: stated,
        ok: false,
        error: truncate(errorMessage(err), MAX_ACK_ERROR_CHARS),
      });
      return;
    }
    if (policy.version !== state.policyVersion) {
      try {
        options.onPolicy(policy);
      } catch (err) {
        state.rejected++;
        log.error('policy could not be applied; keeping the previous one', {
          policyVersion: policy.version,
          reason: errorMessage(err),
        });
        void sendAck({
          version: policy.version,
          ok: false,
          error: truncate(`not applied: ${errorMessage(err)}`, MAX_ACK_ERROR_CHARS),
        });
        return;
      }
      state.policyVersion = policy.version;
      state.policyReceivedAt = Date.now();
      log.info('policy applied', {
        policyVersion: policy.version,
        providers: policy.providers.map((p) => p.name),
      });
    }
    state.confirmedAt = Date.now();
    void sendAck({ version: policy.version, ok: true });
  };

  /** One stream, from request to end; resolves with how long to wait before the next try. */
  const streamOnce = async (): Promise<{ healthy: boolean; retryAfterMs?: number }> => {
    const { token, ca } = await credentials();
    streamCredentials = { token, ca };
    const url = new URL(WATCH_PATH, base);
    if (options.podName) url.searchParams.set('pod', options.podName);
    return new Promise((resolve) => {
      let healthy = false;
      let settled = false;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (result: { healthy: boolean; retryAfterMs?: number }, error?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        state.connected = false;
        session = undefined;
        if (error && !closed) {
          state.failures++;
          state.lastError = error;
        }
        req.destroy();
        resolve(result);
      };
      const arm = (ms: number) => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish({ healthy }, 'operator stream went silent'), ms);
      };
      const req = https.request(url, {
        agent,
        ca,
        minVersion: 'TLSv1.3',
        headers: { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' },
      });
      current = req;
      arm(options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
      req.on('error', (err) => finish({ healthy }, errorMessage(err)));
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          const retryAfter = Number(res.headers['retry-after']);
          const retryAfterMs = Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined;
          log.warn('operator refused the policy stream', { status: res.statusCode ?? 0 });
          return finish({ healthy: false, retryAfterMs }, `operator answered ${res.statusCode}`);
        }
        const decoder = new LineDecoder();
        let heartbeatMs = 15_000;
        res.on('data', (chunk: Buffer) => {
          try {
            for (const line of decoder.push(chunk)) {
              const message = decodeServerMessage(line);
              if (!message) continue;
              if (message.type === 'hello') {
                heartbeatMs = message.heartbeatMs;
                session = message.session;
                healthy = true;
                state.connected = true;
                state.connects++;
                log.info('connected to operator', { url: base.origin });
              } else if (message.type === 'policy') {
                receivePolicy(message.policy);
              } else if (message.type === 'keys') {
                // Values go to the key store only: never to a log line or an ack.
                options.onKeys?.(message.keys);
              } else if (state.policyVersion !== undefined) {
                // A heartbeat on a live stream: the operator would have pushed a newer one.
                state.confirmedAt = Date.now();
              }
              arm(heartbeatMs * HEARTBEAT_MISSES + 1000);
            }
          } catch (err) {
            finish({ healthy }, errorMessage(err));
          }
        });
        res.on('end', () => finish({ healthy }, 'operator closed the stream'));
        res.on('error', (err) => finish({ healthy }, errorMessage(err)));
      });
      req.end();
    });
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = async (): Promise<void> => {
    let attempt = 0;
    while (!closed) {
      let outcome: { healthy: boolean; retryAfterMs?: number };
      try {
        outcome = await streamOnce();
      } catch (err) {
        // Token or CA file unreadable (e.g. mid-rotation): same backoff as a network error.
        state.failures++;
        state.lastError = errorMessage(err);
        outcome = { healthy: false };
      }
      if (closed) break;
      if (outcome.healthy) attempt = 0;
      const delayMs = Math.max(
        backoffDelay(attempt++, backoff, random()),
        outcome.retryAfterMs ?? 0,
      );
      log.warn('operator stream lost; keeping the last policy and reconnecting', {
        reason: state.lastError ?? 'unknown',
        delayMs,
        policyVersion: state.policyVersion ?? null,
      });
      await sleep(delayMs);
    }
  };
  const running = loop();

  return {
    async close() {
      closed = true;
      current?.destroy();
      wake?.();
      await running;
      agent.destroy();
    },
    state: () => ({ ...state }),
    policyAge(now = Date.now()) {
      return state.confirmedAt === undefined ? undefined : Math.max(0, now - state.confirmedAt);
    },
    lease: postLease,
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
