// Which headers cross the proxy, in each direction. Allowlists: a new header stays out until named.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Client headers a provider may see. Credentials, cookies and hop-by-hop headers are not here. */
const FORWARDED_REQUEST_HEADERS = new Set([
  'accept',
  'user-agent',
  'anthropic-version',
  'anthropic-beta',
  'openai-beta',
  'idempotency-key',
  'x-request-id',
]);

const SDK_HEADER_PREFIX = 'x-stainless-';

/**
 * The provider's header set: allowlisted client headers, then each of `sidecarHeaders` in order
 * (provider defaults, trace context, the credential), then the body's framing. Later sets win.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  ...sidecarHeaders: ReadonlyArray<Readonly<Record<string, string>>>
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (typeof value !== 'string') continue;
    if (FORWARDED_REQUEST_HEADERS.has(name) || name.startsWith(SDK_HEADER_PREFIX))
      out[name] = value;
  }
  for (const headers of sidecarHeaders) Object.assign(out, headers);
  out['content-type'] = 'application/json';
  // Metering reads usage from the response, so it must arrive uncompressed.
  out['accept-encoding'] = 'identity';
  return out;
}

/** Provider response headers the application must not see or that the proxy re-frames. */
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'set-cookie',
  'www-authenticate',
  'openai-organization',
  'openai-project',
  'anthropic-organization-id',
]);

export function clientResponseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) out[name] = value;
  }
  return out;
}
