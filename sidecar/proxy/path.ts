// Request-target checks: what a client may ask for, decided before any routing.

export type PathCheck =
  | { readonly ok: true; readonly provider: string; readonly rest: string; readonly query: string }
  /** `unsafe`: a target that could resolve differently upstream; `no_endpoint`: nothing to route. */
  | { ok: false; kind: 'unsafe' | 'no_endpoint'; reason: string };

const SEGMENT = /^[A-Za-z0-9._~-]+$/;
const MAX_TARGET_LENGTH = 2048;

/** Accepted targets: an application calls a handful of endpoints, each on every request. */
const accepted = new Map<string, PathCheck>();
const MAX_REMEMBERED = 256;

/**
 * Splits `/{provider}/{rest}?{query}`. Refuses anything that could resolve differently upstream:
 * dot segments, encoded slashes or dots, backslashes, empty segments, absolute-form targets.
 */
export function checkRequestTarget(target: string): PathCheck {
  const known = accepted.get(target);
  if (known !== undefined) return known;
  const checked = check(target);
  if (checked.ok) {
    // Only accepted targets are kept, so unique hostile paths cost no more than without it.
    if (accepted.size >= MAX_REMEMBERED) accepted.clear();
    accepted.set(target, checked);
  }
  return checked;
}

function check(target: string): PathCheck {
  if (target.length > MAX_TARGET_LENGTH) return unsafe('request target is too long');
  if (!target.startsWith('/')) return unsafe('request target must be a path');
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt);
  if (path === '/') return noEndpoint();
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') {
      return unsafe('path has an empty, dot, encoded or unsafe segment');
    }
  }
  const [provider, ...rest] = segments;
  if (!provider || rest.length === 0) return noEndpoint();
  return { ok: true, provider, rest: `/${rest.join('/')}`, query };
}

function unsafe(reason: string): PathCheck {
  return { ok: false, kind: 'unsafe', reason };
}

function noEndpoint(): PathCheck {
  return { ok: false, kind: 'no_endpoint', reason: 'path names no provider endpoint' };
}
