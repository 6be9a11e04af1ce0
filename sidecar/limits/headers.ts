// IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers, the Limit/Remaining/Reset form): pure.

/** One bucket's view after a decision. */
export interface BucketSnapshot {
  limit: number;
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

/** The tightest bucket: the smallest remaining fraction, then the longest reset. */
export function tightest(snapshots: BucketSnapshot[]): BucketSnapshot | undefined {
  let best: BucketSnapshot | undefined;
  for (const s of snapshots) {
    if (best === undefined) best = s;
    else {
      const a = s.remaining / s.limit;
      const b = best.remaining / best.limit;
      if (a < b || (a === b && s.resetMs > best.resetMs)) best = s;
    }
  }
  return best;
}

export function rateLimitHeaders(snapshot: BucketSnapshot | undefined): Record<string, string> {
  if (snapshot === undefined) return {};
  return {
    'RateLimit-Limit': String(Math.floor(snapshot.limit)),
    'RateLimit-Remaining': String(Math.max(0, Math.floor(snapshot.remaining))),
    'RateLimit-Reset': String(Math.max(0, Math.ceil(snapshot.resetMs / 1000))),
  };
}

export function refusalHeaders(
  snapshot: BucketSnapshot | undefined,
  retryAfterSeconds: number,
): Record<string, string> {
  return { ...rateLimitHeaders(snapshot), 'Retry-After': String(retryAfterSeconds) };
}
