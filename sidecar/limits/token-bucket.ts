// Token-bucket arithmetic for per-minute limits: pure functions of (state, limit, now), no clock, no I/O.

/** A bucket's fixed shape: it holds `capacity` units and refills `capacity` every minute. */
export interface BucketShape {
  capacity: number;
  /** Units added per millisecond. */
  refillPerMs: number;
}

/**
 * A bucket's level at `updatedAt`. The level may sit below zero after a settlement charged more than
 * was reserved (debt): later requests then wait until the debt is refilled, so the limit holds over
 * time. It never rises above the capacity.
 */
export interface BucketState {
  level: number;
  updatedAt: number;
}

export type TakeResult =
  | { ok: true; state: BucketState }
  | { ok: false; state: BucketState; retryAfterMs: number; neverFits: boolean };

export function perMinute(limit: number): BucketShape {
  return { capacity: limit, refillPerMs: limit / 60_000 };
}

export function fullBucket(shape: BucketShape, now: number): BucketState {
  return { level: shape.capacity, updatedAt: now };
}

/** The state at `now`: refilled for the time elapsed, capped at capacity. Clocks that step back refill nothing. */
export function refill(shape: BucketShape, state: BucketState, now: number): BucketState {
  const elapsed = Math.max(0, now - state.updatedAt);
  const level = Math.min(shape.capacity, state.level + elapsed * shape.refillPerMs);
  return { level, updatedAt: Math.max(now, state.updatedAt) };
}

/** Takes `amount` units if the bucket holds them now; otherwise says how long until it will. */
export function take(
  shape: BucketShape,
  state: BucketState,
  amount: number,
  now: number,
): TakeResult {
  const current = refill(shape, state, now);
  if (amount > shape.capacity) {
    return { ok: false, state: current, retryAfterMs: Infinity, neverFits: true };
  }
  if (current.level >= amount) {
    return { ok: true, state: { level: current.level - amount, updatedAt: current.updatedAt } };
  }
  const retryAfterMs = Math.ceil((amount - current.level) / shape.refillPerMs);
  return { ok: false, state: current, retryAfterMs, neverFits: false };
}

/**
 * Settles a reservation against what was really used: a refund when `used < reserved` (never above
 * capacity), a charge when `used > reserved` (the level may go below zero by that overshoot).
 */
export function settle(
  shape: BucketShape,
  state: BucketState,
  reserved: number,
  used: number,
  now: number,
): BucketState {
  const current = refill(shape, state, now);
  const level = Math.min(shape.capacity, current.level + (reserved - used));
  return { level, updatedAt: current.updatedAt };
}

/** Milliseconds until the bucket is full again (the IETF `RateLimit-Reset` of this bucket). */
export function msUntilFull(shape: BucketShape, state: BucketState): number {
  if (state.level >= shape.capacity) return 0;
  return Math.ceil((shape.capacity - state.level) / shape.refillPerMs);
}
