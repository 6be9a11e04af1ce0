// Request-target checks: what a client may ask for, decided before any routing.

export type PathCheck =
  { ok: true; provider: string; rest: string; query: string } | { ok: false; reason: string };

const SEGMENT = /^[A-Za-z0-9._~-]+$/;
const MAX_TARGET_LENGTH = 2048;

/**
 * Splits `/{provider}/{rest}?{query}`. Refuses anything that could resolve differently upstream:
 * dot segments, encoded slashes or dots, backslashes, empty segments, absolute-form targets.
 */
export function checkRequestTarget(target: string): PathCheck {
  if (target.length > MAX_TARGET_LENGTH) return { ok: false, reason: 'request target is too long' };
  if (!target.startsWith('/')) return { ok: false, reason: 'request target must be a path' };
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt);
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') {
      return { ok: false, reason: 'path has an empty, dot, encoded or unsafe segment' };
    }
  }
  const [provider, ...rest] = segments;
  if (!provider || rest.length === 0)
    return { ok: false, reason: 'path names no provider endpoint' };
  return { ok: true, provider, rest: `/${rest.join('/')}`, query };
}
