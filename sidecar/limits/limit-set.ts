// Which limits apply to a request, and what each one takes from its buckets: pure, compiled once per policy.
import { globToRegExp } from '../policy/glob.js';
import type { RateLimit } from './schema.js';
import { perMinute, type BucketShape } from './token-bucket.js';

export type Dimension = 'requests' | 'tokens';

/** Where a limit's buckets live: this process, or Redis shared by every replica. */
export type Placement = 'local' | 'shared';

export interface CompiledLimit {
  id: string;
  limit: RateLimit;
  placement: Placement;
  /** Per-pod shapes: the whole limit for scope pod, the pod's share for scope shared. */
  local: Partial<Record<Dimension, BucketShape>>;
  /** Whole-limit shapes for the Redis buckets (only for placement shared). */
  shared: Partial<Record<Dimension, BucketShape>>;
  /** Concurrency slots for this pod (scaled by share for scope shared: slots are never shared). */
  maxConcurrent?: number;
  matches(provider: string, model: string): boolean;
}

export function compileLimit(limit: RateLimit, options: { redis: boolean }): CompiledLimit {
  const placement: Placement = limit.scope === 'shared' && options.redis ? 'shared' : 'local';
  const share = limit.scope === 'shared' ? (limit.share ?? 1) : 1;
  const scaled = (n: number): number => Math.max(1, Math.floor(n * share));
  const local: Partial<Record<Dimension, BucketShape>> = {};
  const shared: Partial<Record<Dimension, BucketShape>> = {};
  if (limit.requestsPerMinute !== undefined) {
    local.requests = perMinute(scaled(limit.requestsPerMinute));
    shared.requests = perMinute(limit.requestsPerMinute);
  }
  if (limit.tokensPerMinute !== undefined) {
    local.tokens = perMinute(scaled(limit.tokensPerMinute));
    shared.tokens = perMinute(limit.tokensPerMinute);
  }
  const provider = limit.match?.provider;
  const model = limit.match?.model === undefined ? undefined : globToRegExp(limit.match.model);
  return {
    id: limit.id,
    limit,
    placement,
    local,
    shared: placement === 'shared' ? shared : {},
    ...(limit.maxConcurrent !== undefined
      ? { maxConcurrent: Math.max(1, Math.ceil(limit.maxConcurrent * share)) }
      : {}),
    matches: (p, m) => (provider === undefined || provider === p) && (model?.test(m) ?? true),
  };
}

/** A fingerprint of everything that shapes a limit's buckets, so a policy push keeps unchanged buckets. */
export function limitFingerprint(limit: CompiledLimit): string {
  const { from: _from, ...shape } = limit.limit;
  return `${limit.placement}|${JSON.stringify(shape)}`;
}

/** The units a request reserves in a token bucket: its input estimate plus its capped output. */
export function tokenReservation(estimatedInputTokens: number, maxOutputTokens: number): number {
  const input = Number.isFinite(estimatedInputTokens) ? Math.max(0, estimatedInputTokens) : 0;
  const output = Number.isFinite(maxOutputTokens) ? Math.max(0, maxOutputTokens) : 0;
  return Math.max(1, Math.ceil(input + output));
}
