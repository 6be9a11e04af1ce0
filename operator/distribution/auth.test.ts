import { describe, expect, it } from '@jest/globals';
import { bearerToken, identityFromReview, secondsUntilExpiry, TokenAuthenticator } from './auth.js';
import { takeToken } from './throttle.js';

const extra = {
  'authentication.kubernetes.io/pod-name': ['pod-a'],
  'authentication.kubernetes.io/pod-uid': ['uid-a'],
};
const user = { username: 'system:serviceaccount:ns:app', extra };

describe('identityFromReview', () => {
  it('takes the pod identity from the token claims', () => {
    expect(identityFromReview({ authenticated: true, audiences: ['llmproxy.io'], user })).toEqual({
      namespace: 'ns',
      serviceAccount: 'app',
      podName: 'pod-a',
      podUid: 'uid-a',
    });
  });

  it('refuses an unauthenticated review and one not valid for our audience', () => {
    expect(identityFromReview({ authenticated: false })).toBe('invalid_token');
    expect(identityFromReview({ authenticated: true, audiences: ['other'], user })).toBe(
      'invalid_token',
    );
    expect(identityFromReview({ authenticated: true, user })).toBe('invalid_token');
  });

  it('refuses tokens that are not bound to a pod, or not a service account', () => {
    const audiences = ['llmproxy.io'];
    expect(
      identityFromReview({
        authenticated: true,
        audiences,
        user: { username: 'system:serviceaccount:ns:app' },
      }),
    ).toBe('not_a_pod_token');
    expect(
      identityFromReview({ authenticated: true, audiences, user: { username: 'alice', extra } }),
    ).toBe('not_a_pod_token');
    expect(
      identityFromReview({
        authenticated: true,
        audiences,
        user: {
          ...user,
          extra: { ...extra, 'authentication.kubernetes.io/pod-name': ['a', 'b'] },
        },
      }),
    ).toBe('not_a_pod_token');
  });
});

describe('bearer tokens', () => {
  it('extracts only a well-formed bearer token', () => {
    expect(bearerToken('Bearer abc.def-ghi')).toBe('abc.def-ghi');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('reads the exp claim without trusting it', () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1000 })).toString('base64url');
    expect(secondsUntilExpiry(`h.${payload}.s`, 990_000)).toBe(10);
    expect(secondsUntilExpiry('opaque', 0)).toBeUndefined();
  });
});

describe('TokenAuthenticator', () => {
  it('asks the API server once per token within the cache lifetime', async () => {
    let calls = 0;
    const auth = new TokenAuthenticator(async () => {
      calls++;
      return { authenticated: true, audiences: ['llmproxy.io'], user };
    });
    await auth.authenticate('t', 0);
    await auth.authenticate('t', 1000);
    expect(calls).toBe(1);
    await auth.authenticate('t', 60_000);
    expect(calls).toBe(2);
  });

  it('reports an unreachable API server as unavailable, not as a bad token', async () => {
    const auth = new TokenAuthenticator(async () => {
      throw new Error('ECONNREFUSED');
    });
    await expect(auth.authenticate('t', 0)).rejects.toMatchObject({
      reason: 'review_unavailable',
    });
  });
});

describe('takeToken', () => {
  it('allows a burst, then refuses until tokens refill', () => {
    const rate = { perSecond: 1, burst: 2 };
    let bucket = takeToken(undefined, rate, 0).bucket;
    bucket = takeToken(bucket, rate, 0).bucket;
    const refused = takeToken(bucket, rate, 0);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBe(1000);
    expect(takeToken(refused.bucket, rate, 1000).allowed).toBe(true);
  });
});
