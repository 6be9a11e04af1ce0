// Per-key token buckets (pure arithmetic, time as a parameter), so one misbehaving sidecar
// is slowed down without touching the others.

export interface Rate {
  /** tokens added per second */
  perSecond: number;
  /** bucket size: how many may come at once */
  burst: number;
}

export interface Bucket {
  tokens: number;
  at: number;
}

/** Takes one token if there is one; returns the new bucket and, if refused, when to retry. */
export function takeToken(
  bucket: Bucket | undefined,
  rate: Rate,
  now: number,
): { allowed: boolean; bucket: Bucket; retryAfterMs: number } {
  const start = bucket ?? { tokens: rate.burst, at: now };
  const elapsed = Math.max(0, now - start.at) / 1000;
  const tokens = Math.min(rate.burst, start.tokens + elapsed * rate.perSecond);
  if (tokens >= 1)
    return { allowed: true, bucket: { tokens: tokens - 1, at: now }, retryAfterMs: 0 };
  const retryAfterMs = Math.ceil(((1 - tokens) / rate.perSecond) * 1000);
  return { allowed: false, bucket: { tokens, at: now }, retryAfterMs };
}

/** A bounded map of buckets; the least recently used key is dropped when it is full. */
export class Throttle {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: Rate,
    private readonly maxKeys = 100_000,
  ) {}

  take(key: string, now: number): { allowed: boolean; retryAfterMs: number } {
    const result = takeToken(this.buckets.get(key), this.rate, now);
    this.buckets.delete(key);
    this.buckets.set(key, result.bucket);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return { allowed: result.allowed, retryAfterMs: result.retryAfterMs };
  }
}
