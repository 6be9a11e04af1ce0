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

export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  providerHeaders: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (typeof value !== 'string') continue;
    if (FORWARDED_REQUEST_HEADERS.has(name) || name.startsWith(SDK_HEADER_PREFIX))
      out[name] = value;
  }
  return {
    ...out,
    ...providerHeaders,
    'content-type': 'application/json',
    // Metering reads usage from the response, so it must arrive uncompressed.
    'accept-encoding': 'identity',
  };
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
  for (const [name, value] of Object.entries(upstream)) {
    if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) out[name] = value;
  }
  return out;
}
