// The limiter set a sidecar enforces: every matching limit must admit a request (rates, then slots),
// and a refusal by any one rolls back what the others reserved.
import type { Logger } from '../telemetry/log.js';
import type { RateLimit } from './schema.js';
import { Slots } from './concurrency.js';
import { refusalHeaders, rateLimitHeaders, tightest, type BucketSnapshot } from './headers.js';
import {
  compileLimit,
  limitFingerprint,
  tokenReservation,
  type CompiledLimit,
  type Dimension,
} from './limit-set.js';
import type { SharedStore, SharedTake } from './redis.js';
import {
  fullBucket,
  msUntilFull,
  settle as settleBucket,
  take,
  type BucketShape,
  type BucketState,
} from './token-bucket.js';

export interface LimitRequest {
  /** The provider's route name (ProviderGrant.name), which `match.provider` names. */
  provider: string;
  model: string;
  estimatedInputTokens: number;
  /** The output cap the request goes out with (after the policy's maxOutputTokens). */
  maxOutputTokens: number;
}

export interface Admitted {
  ok: true;
  limitIds: string[];
  /** IETF RateLimit-Limit/Remaining/Reset of the tightest limit; empty when no rate limit matched. */
  headers: Record<string, string>;
  /** Settles token reservations against real usage (refund or charge the difference). Once only. */
  settle(actual: { inputTokens: number; outputTokens: number }): void;
  /** Frees the concurrency slots. Idempotent. */
  release(): void;
}

export type RefusalReason =
  | 'rate' // a bucket is empty now; retry later
  | 'never_fits' // the reservation exceeds a whole bucket: retrying cannot help
  | 'concurrency' // no slot within the wait bound, or the queue is full
  | 'overloaded' // the sidecar's global in-flight cap
  | 'store_unavailable'; // Redis down and onRedisDown is 'closed'

export interface Refused {
  ok: false;
  status: 429 | 503;
  reason: RefusalReason;
  limitId: string;
  retryAfterSeconds: number;
  headers: Record<string, string>;
  /** Names the limit and the dimension; never any request content. */
  message: string;
}

export interface Limiters {
  apply(limits: RateLimit[]): void;
  admit(req: LimitRequest): Promise<Admitted | Refused>;
  close(): Promise<void>;
}

export interface LimitersOptions {
  /** When Redis is unreachable: the pod's share of each shared limit (default), or refuse with 503. */
  onRedisDown?: 'pod-share' | 'closed';
  log: Logger;
  /** Milliseconds; Date.now by default. */
  clock?: () => number;
  /** Requests in flight across the whole sidecar before it answers 503. */
  maxInFlight?: number;
  /** Requests that may queue for one limit's concurrency slot. */
  maxQueued?: number;
  /** How long a request may wait for a concurrency slot. */
  maxQueueWaitMs?: number;
  /** Where `scope: shared` limits live (see connectSharedStore); without one they hold per pod. */
  sharedStore?: SharedStore;
}

/** The id reported when the sidecar-wide in-flight cap refuses. */
export const GLOBAL_LIMIT_ID = 'sidecar-max-in-flight';

interface Entry {
  compiled: CompiledLimit;
  fingerprint: string;
  /** Per-pod buckets: scope pod, or scope shared without Redis. */
  buckets: Partial<Record<Dimension, BucketState>>;
  /** The pod-share buckets that stand in for Redis while it is unreachable. */
  fallback: Partial<Record<Dimension, BucketState>>;
  slots?: Slots;
}

type Where = 'local' | 'fallback' | 'shared';

interface Hold {
  entry: Entry;
  dim: Dimension;
  amount: number;
  /**
   * The part of `amount` that is certain: max output tokens (the input is a byte-bound estimate,
   * often several times the real count). Only this decides that a request can never fit.
   */
  certain: number;
  where: Where;
}

type TakeOutcome =
  | { ok: true; snapshots: BucketSnapshot[] }
  | { ok: false; hold: Hold; retryAfterMs: number; neverFits: boolean; snapshot: BucketSnapshot };

const DIMENSIONS: Dimension[] = ['requests', 'tokens'];
const DIMENSION_WORDS: Record<Dimension, string> = {
  requests: 'requests per minute',
  tokens: 'tokens per minute',
};

export function createLimiters(options: LimitersOptions): Limiters {
  const log = options.log;
  const clock = options.clock ?? Date.now;
  const onRedisDown = options.onRedisDown ?? 'pod-share';
  const maxInFlight = options.maxInFlight ?? 4096;
  const slotOptions = (maxConcurrent: number) => ({
    maxConcurrent,
    maxQueued: options.maxQueued ?? 100,
    maxWaitMs: options.maxQueueWaitMs ?? 5000,
  });
  const store: SharedStore | undefined = options.sharedStore;
  let entries: Entry[] = [];
  let inFlight = 0;
  let standaloneShared = '';

  const shapeOf = (h: Hold): BucketShape =>
    (h.where === 'shared' ? h.entry.compiled.shared[h.dim] : h.entry.compiled.local[h.dim])!;
  const statesOf = (h: Hold) => (h.where === 'fallback' ? h.entry.fallback : h.entry.buckets);
  const stateOf = (h: Hold, now: number): BucketState =>
    statesOf(h)[h.dim] ?? fullBucket(shapeOf(h), now);
  const sharedTake = (h: Hold): SharedTake => {
    const shape = shapeOf(h);
    return {
      key: `${h.entry.compiled.id}:${h.dim}`,
      capacity: shape.capacity,
      refillPerMs: shape.refillPerMs,
      amount: h.amount,
    };
  };

  /** Takes every local hold or none: the sidecar is single-threaded, so this is atomic. */
  function takeLocal(holds: Hold[], now: number): TakeOutcome {
    const next: BucketState[] = [];
    const snapshots: BucketSnapshot[] = [];
    for (const h of holds) {
      const shape = shapeOf(h);
      const result = take(shape, stateOf(h, now), h.amount, now);
      if (!result.ok) {
        return {
          ok: false,
          hold: h,
          retryAfterMs: result.retryAfterMs,
          neverFits: result.neverFits,
          snapshot: {
            limit: shape.capacity,
            remaining: result.state.level,
            resetMs: msUntilFull(shape, result.state),
          },
        };
      }
      next.push(result.state);
      snapshots.push({
        limit: shape.capacity,
        remaining: result.state.level,
        resetMs: msUntilFull(shape, result.state),
      });
    }
    holds.forEach((h, i) => (statesOf(h)[h.dim] = next[i]!));
    return { ok: true, snapshots };
  }

  /** Gives back (reserved - used) of each hold; Redis adjustments are fire-and-forget. */
  function settleHolds(holds: Hold[], used: (h: Hold) => number): void {
    const now = clock();
    for (const h of holds) {
      const delta = h.amount - used(h);
      if (delta === 0) continue;
      if (h.where === 'shared') {
        store?.adjust(sharedTake(h), delta).catch(() => {
          log.debug('shared rate limit settlement skipped: Redis unavailable', {
            event: 'redis_settle_skipped',
            limitId: h.entry.compiled.id,
          });
        });
      } else {
        statesOf(h)[h.dim] = settleBucket(shapeOf(h), stateOf(h, now), h.amount, used(h), now);
      }
    }
  }
  const rollback = (holds: Hold[]) => settleHolds(holds, () => 0);

  function refuse(
    status: 429 | 503,
    reason: RefusalReason,
    limitId: string,
    retryAfterMs: number,
    message: string,
    snapshot?: BucketSnapshot,
  ): Refused {
    const retryAfterSeconds = Math.max(1, Math.ceil(Math.min(retryAfterMs, 60_000) / 1000));
    return {
      ok: false,
      status,
      reason,
      limitId,
      retryAfterSeconds,
      headers: refusalHeaders(snapshot, retryAfterSeconds),
      message,
    };
  }

  function rateRefusal(outcome: Extract<TakeOutcome, { ok: false }>): Refused {
    const { hold } = outcome;
    const id = hold.entry.compiled.id;
    const words = DIMENSION_WORDS[hold.dim];
    const capacity = shapeOf(hold).capacity;
    if (outcome.neverFits) {
      return refuse(
        429,
        'never_fits',
        id,
        60_000,
        `request needs ${hold.amount} tokens (input estimate plus max output tokens), more than rate limit "${id}" allows in total (${capacity} ${words}); it can never be admitted: lower max_tokens or shorten the input`,
        { ...outcome.snapshot, resetMs: 60_000 },
      );
    }
    return refuse(
      429,
      'rate',
      id,
      outcome.retryAfterMs,
      `rate limit "${id}" exceeded (${capacity} ${words}); retry later`,
      { ...outcome.snapshot, resetMs: Math.max(outcome.snapshot.resetMs, outcome.retryAfterMs) },
    );
  }

  function plan(
    matched: Entry[],
    reservation: number,
    certainTokens: number,
    sharedUp: boolean,
  ): Hold[] | Refused {
    const holds: Hold[] = [];
    for (const entry of matched) {
      for (const dim of DIMENSIONS) {
        if (entry.compiled.local[dim] === undefined) continue;
        const amount = dim === 'requests' ? 1 : reservation;
        const certain = dim === 'requests' ? 1 : certainTokens;
        if (entry.compiled.placement === 'shared') {
          if (sharedUp) holds.push({ entry, dim, amount, certain, where: 'shared' });
          else if (onRedisDown === 'closed') return storeDown(entry.compiled.id);
          else holds.push({ entry, dim, amount, certain, where: 'fallback' });
        } else holds.push({ entry, dim, amount, certain, where: 'local' });
      }
    }
    return holds;
  }

  const storeDown = (limitId: string): Refused =>
    refuse(
      503,
      'store_unavailable',
      limitId,
      1000,
      `shared rate limit "${limitId}" cannot be checked: its store is unavailable`,
    );

  /**
   * A request whose certain part is larger than a whole bucket is refused before anything is
   * taken. One whose estimate merely exceeds it reserves the whole bucket and settles on the real
   * usage: the estimate is an upper bound, and refusing on it would turn away prompts that fit.
   */
  function neverFits(holds: Hold[], now: number): Refused | undefined {
    for (const h of holds) {
      const shape = shapeOf(h);
      if (h.amount > shape.capacity && h.certain <= shape.capacity) h.amount = shape.capacity;
      if (h.amount > shape.capacity) {
        const state = stateOf(h, now);
        return rateRefusal({
          ok: false,
          hold: h,
          retryAfterMs: Infinity,
          neverFits: true,
          snapshot: {
            limit: shape.capacity,
            remaining: state.level,
            resetMs: msUntilFull(shape, state),
          },
        });
      }
    }
    return undefined;
  }

  async function takeRates(
    holds: Hold[],
  ): Promise<{ ok: true; holds: Hold[]; snapshots: BucketSnapshot[] } | Refused> {
    const now = clock();
    const tooBig = neverFits(holds, now);
    if (tooBig) return tooBig;
    const local = holds.filter((h) => h.where !== 'shared');
    let shared = holds.filter((h) => h.where === 'shared');
    const localOutcome = takeLocal(local, now);
    if (!localOutcome.ok) return rateRefusal(localOutcome);
    const snapshots = [...localOutcome.snapshots];
    if (shared.length === 0 || store === undefined) return { ok: true, holds: local, snapshots };
    try {
      const result = await store.takeAll(shared.map(sharedTake));
      if (!result.ok) {
        rollback(local);
        const hold = shared[result.index]!;
        const shape = shapeOf(hold);
        return rateRefusal({
          ok: false,
          hold,
          retryAfterMs: result.retryAfterMs,
          neverFits: false,
          snapshot: {
            limit: shape.capacity,
            remaining: result.level,
            resetMs: Math.ceil((shape.capacity - result.level) / shape.refillPerMs),
          },
        });
      }
      shared.forEach((h, i) => {
        const shape = shapeOf(h);
        snapshots.push({
          limit: shape.capacity,
          remaining: result.levels[i]!,
          resetMs: result.fullInMs[i]!,
        });
      });
      return { ok: true, holds: [...local, ...shared], snapshots };
    } catch {
      // Redis failed during this very check: decide as if it had been down from the start.
      if (onRedisDown === 'closed') {
        rollback(local);
        return storeDown(shared[0]!.entry.compiled.id);
      }
      shared = shared.map((h) => ({ ...h, where: 'fallback' }));
      const fallbackNow = clock();
      const tooBigForShare = neverFits(shared, fallbackNow);
      const fallback = tooBigForShare ?? takeLocal(shared, fallbackNow);
      if (!fallback.ok) {
        rollback(local);
        return 'status' in fallback ? fallback : rateRefusal(fallback);
      }
      return {
        ok: true,
        holds: [...local, ...shared],
        snapshots: [...snapshots, ...fallback.snapshots],
      };
    }
  }

  async function takeSlots(
    matched: Entry[],
  ): Promise<{ ok: true; releases: (() => void)[] } | Refused> {
    const releases: (() => void)[] = [];
    for (const entry of matched) {
      if (!entry.slots) continue;
      const slot = await entry.slots.acquire();
      if (!slot.ok) {
        releases.forEach((r) => r());
        const id = entry.compiled.id;
        return refuse(
          429,
          'concurrency',
          id,
          1000,
          slot.reason === 'timeout'
            ? `rate limit "${id}": no concurrency slot became free in time (${entry.compiled.maxConcurrent} concurrent requests)`
            : `rate limit "${id}": too many requests waiting for a concurrency slot (${entry.compiled.maxConcurrent} concurrent requests)`,
        );
      }
      releases.push(slot.release);
    }
    return { ok: true, releases };
  }

  async function admitMatched(req: LimitRequest, done: () => void): Promise<Admitted | Refused> {
    const matched = entries.filter((e) => e.compiled.matches(req.provider, req.model));
    // Most calls match no limit (or the policy has none): nothing to take, settle or report.
    if (matched.length === 0) return unlimited(done);
    const reservation = tokenReservation(req.estimatedInputTokens, req.maxOutputTokens);
    const planned = plan(matched, reservation, req.maxOutputTokens, store?.available() ?? false);
    if (!Array.isArray(planned)) return planned;
    const rates = await takeRates(planned);
    if (!rates.ok) return rates;
    const slots = await takeSlots(matched);
    if (!slots.ok) {
      rollback(rates.holds);
      return slots;
    }
    const tokenHolds = rates.holds.filter((h) => h.dim === 'tokens');
    let settled = false;
    let released = false;
    return {
      ok: true,
      limitIds: matched.map((e) => e.compiled.id),
      headers: rateLimitHeaders(tightest(rates.snapshots)),
      settle(actual) {
        if (settled) return;
        settled = true;
        const used = Math.max(0, actual.inputTokens || 0) + Math.max(0, actual.outputTokens || 0);
        settleHolds(tokenHolds, () => used);
      },
      release() {
        if (released) return;
        released = true;
        slots.releases.forEach((r) => r());
        done();
      },
    };
  }

  return {
    apply(limits) {
      const previous = new Map(entries.map((e) => [e.compiled.id, e]));
      entries = limits.map((limit) => {
        const compiled = compileLimit(limit, { redis: store !== undefined });
        const fingerprint = limitFingerprint(compiled);
        const old = previous.get(limit.id);
        const keep = old !== undefined && old.fingerprint === fingerprint;
        const entry: Entry = {
          compiled,
          fingerprint,
          buckets: keep ? old.buckets : {},
          fallback: keep ? old.fallback : {},
        };
        if (compiled.maxConcurrent !== undefined) {
          const options = slotOptions(compiled.maxConcurrent);
          if (old?.slots) {
            old.slots.update(options);
            entry.slots = old.slots;
          } else entry.slots = new Slots(options);
        }
        return entry;
      });
      const ids = limits.filter((l) => l.scope === 'shared').map((l) => l.id);
      if (store === undefined && ids.join('\n') !== standaloneShared) {
        standaloneShared = ids.join('\n');
        if (ids.length > 0)
          log.warn(
            'standalone mode (no Redis): shared rate limits are enforced per pod, scaled by their share when set',
            { event: 'shared_limits_per_pod', mode: 'standalone', limitIds: ids },
          );
      }
    },

    async admit(req) {
      if (inFlight >= maxInFlight) {
        return refuse(
          503,
          'overloaded',
          GLOBAL_LIMIT_ID,
          1000,
          `the sidecar is overloaded (${maxInFlight} requests in flight); retry later`,
        );
      }
      inFlight += 1;
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        inFlight -= 1;
      };
      try {
        const result = await admitMatched(req, done);
        if (!result.ok) done();
        return result;
      } catch (err) {
        done();
        throw err;
      }
    },

    async close() {
      for (const entry of entries) entry.slots?.close();
      await store?.close();
    },
  };
}

/** Admission under no limit: only the in-flight slot is held, and release frees it. */
function unlimited(done: () => void): Admitted {
  return {
    ok: true,
    limitIds: [],
    headers: {},
    settle: () => undefined,
    release: done,
  };
}
