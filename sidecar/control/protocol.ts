// The wire protocol of the operator -> sidecar policy stream, shared by both ends.
// The stream is newline-delimited JSON over one long-lived HTTPS response; acks go back as
// separate POSTs. It lives in the sidecar because the operator depends on the sidecar, never
// the other way round.
import type { CompiledPolicy } from '../policy/compiled.js';
import type { OperatorKey } from '../secrets/index.js';

export const WATCH_PATH = '/v1/policy/watch';
export const ACK_PATH = '/v1/policy/ack';
export const TOKEN_AUDIENCE = 'llmproxy.io';
export const STREAM_CONTENT_TYPE = 'application/x-ndjson';
/**
 * Acks name the stream they belong to with the session the hello message handed out: an
 * unguessable value known only to the two ends of that authenticated TLS stream, so an ack
 * needs no second TokenReview. Like a token, it is never logged.
 */
export const SESSION_HEADER = 'x-llmproxy-session';

/** A single stream line may carry a whole policy with key material; anything bigger is refused. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** An ack is a version, a flag and a short error. */
export const MAX_ACK_BYTES = 16 * 1024;
/** Nack reasons are truncated to this many characters before they are sent or stored. */
export const MAX_ACK_ERROR_CHARS = 1024;

/** Spend reports and allowance requests (DESIGN.md: budgets are enforced by leased allowances). */
export const LEASE_PATH = '/v1/budget/lease';
export const MAX_LEASE_BYTES = 64 * 1024;
export const MAX_LEASE_REPORTS = 64;
const BUDGET_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const EPOCH = /^[A-Za-z0-9_-]{8,64}$/;
/** No single report can claim more than a billion dollars: anything above is a bug or an attack. */
const MAX_REPORTED_MICROS = 1e15;

export interface LeaseReport {
  /** `namespace/name` of an LlmBudget in this pod's policy. */
  budget: string;
  /** Strictly increasing per sidecar process; a resend keeps its number, so it counts once. */
  seq: number;
  /** Spend since the previous report, in micro-dollars. */
  spentMicros: number;
  want: boolean;
  release?: boolean;
}

export interface LeaseRequest {
  /** This sidecar process, random per start. */
  epoch: string;
  reports: LeaseReport[];
  /** A call is waiting for this answer: the operator writes it without batching delay. */
  urgent?: boolean;
}

export type LeaseGrant =
  | { budget: string; amountMicros: number; expiresInMs: number; exhausted: boolean }
  | { budget: string; error: 'unknown_budget' | 'unavailable' };

export interface LeaseResponse {
  grants: LeaseGrant[];
}

/** Validates an untrusted lease request (already size-limited by the caller). */
export function decodeLeaseRequest(value: unknown): LeaseRequest | undefined {
  if (!isRecord(value) || typeof value.epoch !== 'string' || !EPOCH.test(value.epoch)) {
    return undefined;
  }
  const { reports } = value;
  if (!Array.isArray(reports) || reports.length === 0 || reports.length > MAX_LEASE_REPORTS) {
    return undefined;
  }
  const decoded: LeaseReport[] = [];
  const seen = new Set<string>();
  for (const item of reports as unknown[]) {
    if (!isRecord(item)) return undefined;
    const { budget, seq, spentMicros, want, release } = item;
    if (typeof budget !== 'string' || !BUDGET_ID.test(budget) || seen.has(budget)) return undefined;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
    if (
      typeof spentMicros !== 'number' ||
      !Number.isFinite(spentMicros) ||
      spentMicros < 0 ||
      spentMicros > MAX_REPORTED_MICROS
    ) {
      return undefined;
    }
    if (typeof want !== 'boolean') return undefined;
    if (release !== undefined && typeof release !== 'boolean') return undefined;
    seen.add(budget);
    decoded.push({ budget, seq, spentMicros, want, ...(release ? { release } : {}) });
  }
  if (value.urgent !== undefined && typeof value.urgent !== 'boolean') return undefined;
  return { epoch: value.epoch, reports: decoded, ...(value.urgent ? { urgent: true } : {}) };
}

/** Validates the operator's answer (the sidecar trusts the operator, but not a garbled body). */
export function decodeLeaseResponse(value: unknown): LeaseResponse | undefined {
  if (!isRecord(value) || !Array.isArray(value.grants)) return undefined;
  const grants: LeaseGrant[] = [];
  for (const item of value.grants as unknown[]) {
    if (!isRecord(item) || typeof item.budget !== 'string') return undefined;
    if (item.error === 'unknown_budget' || item.error === 'unavailable') {
      grants.push({ budget: item.budget, error: item.error });
      continue;
    }
    const { amountMicros, expiresInMs, exhausted } = item;
    if (
      typeof amountMicros !== 'number' ||
      !Number.isFinite(amountMicros) ||
      typeof expiresInMs !== 'number' ||
      !Number.isFinite(expiresInMs) ||
      typeof exhausted !== 'boolean'
    ) {
      return undefined;
    }
    grants.push({ budget: item.budget, amountMicros, expiresInMs, exhausted });
  }
  return { grants };
}

export type ServerMessage =
  | { type: 'hello'; heartbeatMs: number; pod: string; session?: string }
  | { type: 'policy'; policy: CompiledPolicy }
  /**
   * The keys of the `fetchFrom: operator` providers the pod's policy grants, all of them each
   * time (a provider left out has none). A message of its own, so a policy's content-hash
   * version never depends on a secret.
   */
  | { type: 'keys'; keys: OperatorKey[] }
  | { type: 'heartbeat' };

export interface Ack {
  version: string;
  ok: boolean;
  error?: string;
}

export function encodeMessage(message: ServerMessage): string {
  return `${JSON.stringify(message)}\n`;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: 'line_too_long' | 'malformed_message',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Splits a byte stream into lines without trusting the peer: a line longer than the limit
 * is an error (the buffer never grows past it), and bytes are decoded only per whole line
 * so a multi-byte character split across chunks survives.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, start)) {
      this.append(chunk.subarray(start, i));
      lines.push(Buffer.concat(this.pending).toString('utf8'));
      this.pending = [];
      this.pendingBytes = 0;
      start = i + 1;
    }
    this.append(chunk.subarray(start));
    return lines.filter((line) => line.trim() !== '');
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.maxLineBytes) {
      throw new ProtocolError('line_too_long', `stream line exceeds ${this.maxLineBytes} bytes`);
    }
    this.pending.push(part);
  }
}

/** Parses one stream line. Unknown message types are returned as undefined (forward compatible). */
export function decodeServerMessage(line: string): ServerMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError('malformed_message', 'stream line is not JSON');
  }
  if (!isRecord(value) || typeof value.type !== 'string') {
    throw new ProtocolError('malformed_message', 'stream message has no type');
  }
  switch (value.type) {
    case 'hello':
      if (typeof value.heartbeatMs !== 'number' || typeof value.pod !== 'string') {
        throw new ProtocolError('malformed_message', 'hello message is malformed');
      }
      return {
        type: 'hello',
        heartbeatMs: value.heartbeatMs,
        pod: value.pod,
        ...(typeof value.session === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(value.session)
          ? { session: value.session }
          : {}),
      };
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'policy':
      if (!isRecord(value.policy)) {
        throw new ProtocolError('malformed_message', 'policy message has no policy');
      }
      // Validated by the receiver with parseCompiledPolicy, which is the contract's own check.
      return { type: 'policy', policy: value.policy as CompiledPolicy };
    case 'keys':
      return { type: 'keys', keys: decodeKeys(value.keys) };
    default:
      return undefined;
  }
}

/** More providers than a policy may name (32 per LlmPolicy, several policies) is malformed. */
export const MAX_PUSHED_KEYS = 256;
const PROVIDER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Checks the shape of pushed keys; an error never quotes any part of the message. */
function decodeKeys(raw: unknown): OperatorKey[] {
  if (!Array.isArray(raw) || raw.length > MAX_PUSHED_KEYS) {
    throw new ProtocolError('malformed_message', 'keys message is malformed');
  }
  const keys: OperatorKey[] = [];
  const seen = new Set<string>();
  for (const item of raw as unknown[]) {
    if (!isRecord(item)) throw new ProtocolError('malformed_message', 'keys message is malformed');
    const { provider, secretId, version, value } = item;
    if (
      typeof provider !== 'string' ||
      !PROVIDER_NAME.test(provider) ||
      seen.has(provider) ||
      typeof secretId !== 'string' ||
      secretId.length === 0 ||
      secretId.length > 2048 ||
      typeof version !== 'string' ||
      version.length > 128 ||
      typeof value !== 'string' ||
      value.length === 0
    ) {
      throw new ProtocolError('malformed_message', 'keys message is malformed');
    }
    seen.add(provider);
    keys.push({ provider, secretId, version, value });
  }
  return keys;
}

/** Validates an untrusted ack body (already size-limited by the caller). */
export function decodeAck(value: unknown): Ack | undefined {
  if (!isRecord(value)) return undefined;
  const { version, ok, error } = value;
  if (typeof version !== 'string' || version.length === 0 || version.length > 128) return undefined;
  if (typeof ok !== 'boolean') return undefined;
  if (error !== undefined && typeof error !== 'string') return undefined;
  const ack: Ack = { version, ok };
  if (error !== undefined) ack.error = truncate(error, MAX_ACK_ERROR_CHARS);
  return ack;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The message of anything thrown, truncated. Not `instanceof Error`: errors from Node's own
 * modules come from another realm under some test runners. Callers only pass errors from
 * Node, the contract parser or our code, never ones built from a token or header value.
 */
export function errorMessage(err: unknown, max = 300): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? truncate(message, max) : 'unknown error';
}
