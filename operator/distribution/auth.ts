// Who is calling: a pod, proven by its projected service-account token. The identity comes
// only from what the API server says about the token (TokenReview), never from the request.
import { createHash } from 'node:crypto';
import { TOKEN_AUDIENCE } from '../../sidecar/control/protocol.js';
import type { TokenReviewResult } from '../kube/index.js';

export interface PodIdentity {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
}

export type AuthFailureReason =
  'missing_token' | 'invalid_token' | 'not_a_pod_token' | 'review_unavailable';

export class AuthError extends Error {
  readonly code = 'unauthenticated';
  constructor(readonly reason: AuthFailureReason) {
    super(`authentication failed: ${reason}`);
  }
}

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';
const SA_PREFIX = 'system:serviceaccount:';

/**
 * The pod identity a TokenReview vouches for, or the reason there is none (pure). The token
 * must be valid for our audience and bound to a pod; a plain service-account token is not
 * enough, because every pod of that account could then read every other pod's policy.
 */
export function identityFromReview(
  review: TokenReviewResult,
  audience = TOKEN_AUDIENCE,
): PodIdentity | AuthFailureReason {
  if (!review.authenticated) return 'invalid_token';
  // The server lists the requested audiences the token is valid for; an empty list on an
  // authenticated review means it did not check audiences, which we do not accept.
  if (!review.audiences?.includes(audience)) return 'invalid_token';
  const username = review.user?.username ?? '';
  if (!username.startsWith(SA_PREFIX)) return 'not_a_pod_token';
  const [namespace, serviceAccount, ...rest] = username.slice(SA_PREFIX.length).split(':');
  const podName = single(review.user?.extra?.[POD_NAME]);
  const podUid = single(review.user?.extra?.[POD_UID]);
  if (!namespace || !serviceAccount || rest.length > 0 || !podName || !podUid) {
    return 'not_a_pod_token';
  }
  return { namespace, serviceAccount, podName, podUid };
}

function single(values: string[] | undefined): string | undefined {
  return values?.length === 1 ? values[0] : undefined;
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,16384})$/.exec(header.trim());
  return match?.[1];
}

/**
 * Seconds until the token's own `exp` claim, read WITHOUT verification: used only to
 * shorten how long a review result is cached, never to accept anything.
 */
export function secondsUntilExpiry(token: string, now: number): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof claims.exp === 'number' ? claims.exp - now / 1000 : undefined;
  } catch {
    return undefined;
  }
}

type Cached = { result: PodIdentity | AuthFailureReason; until: number };

/**
 * Authenticates tokens through TokenReview with a short cache keyed by the token's hash, so
 * a reconnect storm (or a flood of bad tokens) does not become a TokenReview storm.
 */
export class TokenAuthenticator {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly review: (token: string, audiences: string[]) => Promise<TokenReviewResult>,
    private readonly options: { ttlMs?: number; negativeTtlMs?: number; maxEntries?: number } = {},
  ) {}

  async authenticate(token: string | undefined, now: number): Promise<PodIdentity> {
    if (!token) throw new AuthError('missing_token');
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.cache.get(key);
    let result = hit && hit.until > now ? hit.result : undefined;
    if (result === undefined) {
      let review: TokenReviewResult;
      try {
        review = await this.review(token, [TOKEN_AUDIENCE]);
      } catch {
        throw new AuthError('review_unavailable');
      }
      result = identityFromReview(review);
      this.remember(key, result, token, now);
    }
    if (typeof result === 'string') throw new AuthError(result);
    return result;
  }

  private remember(key: string, result: Cached['result'], token: string, now: number): void {
    const positive = typeof result !== 'string';
    let ttl = positive ? (this.options.ttlMs ?? 30_000) : (this.options.negativeTtlMs ?? 5_000);
    const left = secondsUntilExpiry(token, now);
    if (positive && left !== undefined) ttl = Math.min(ttl, Math.max(0, left * 1000));
    if (ttl <= 0) return;
    this.cache.delete(key);
    this.cache.set(key, { result, until: now + ttl });
    if (this.cache.size > (this.options.maxEntries ?? 50_000)) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}
