// The request path of DESIGN.md, one step after another:
// route → bounded body → model scope → data protection → rate limits → key → forward → relay and
// meter (streaming too) → settle limits → usage record, span and access log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ProviderType } from '../policy/compiled.js';
import type { RuntimePolicy, RuntimeProvider } from '../policy/runtime.js';
import { adapterFor, type Endpoint, type ProviderAdapter } from '../providers/index.js';
import type { BudgetVerdict } from '../budget/allowances.js';
import type { Admitted, Limiters, Refused } from '../limits/index.js';
import {
  costMicros,
  createResponseMeter,
  estimateInputTokens,
  prepareStreamingRequest,
  type ResponseMeter,
  type Usage,
  type UsageSink,
} from '../metering/index.js';
import { protectRequest } from '../protection/index.js';
import {
  CALLER_HEADER,
  logAccess,
  type CallTelemetry,
  type Telemetry,
} from '../telemetry/index.js';
import type { Logger } from '../telemetry/log.js';
import { UpstreamError, type Upstream, type UpstreamResponse } from '../upstream/forward.js';
import { ClientGoneError, readBoundedBody } from './body.js';
import { errorResponse, ProxyError, streamErrorEvent } from './errors.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { checkRequestTarget } from './path.js';

/** What the pipeline needs from the key store (sidecar/secrets). */
export interface Keys {
  peek(provider: string): string | undefined;
  key(provider: string): Promise<string | undefined>;
  /** True when the key now held differs from the one the provider rejected. */
  refresh(provider: string, rejectedKey?: string): Promise<boolean>;
}

export interface PipelineOptions {
  currentPolicy(): RuntimePolicy | undefined;
  keys: Keys;
  upstream: Upstream;
  limits: Limiters;
  /** Where each admitted request's usage record goes (the operator's ledger in managed mode). */
  usageSink?: UsageSink;
  /** Spend allowances of the pod's budgets (managed mode); absent, budgets are not enforced. */
  budgets?: {
    admit(): BudgetVerdict | Promise<BudgetVerdict>;
    spend(costMicros: number | null): void;
  };
  telemetry: Telemetry;
  log: Logger;
  maxBodyBytes: number;
  /**
   * Request bytes all requests together may hold in memory. Each request reserves its declared
   * length (or the body limit when chunked) before a byte is read; past the budget it is refused
   * as overloaded, so a burst of large prompts cannot exhaust the heap.
   */
  maxBufferedBytes: number;
  /** One info line per request; off when the log level is above info. */
  accessLog: boolean;
  upstreamTimeoutMs: number;
}

const MODEL_NAME = /^[\x21-\x7e]{1,256}$/;
const AZURE_API_VERSION = /^[A-Za-z0-9.-]{1,32}$/;
/** Output tokens reserved against token limits when neither the client nor the grant bounds them. */
const DEFAULT_OUTPUT_RESERVATION = 1024;

/** Per-request facts gathered along the way, for the access log. */
interface Exchange {
  started: number;
  provider?: RuntimeProvider;
  adapter?: ProviderAdapter;
  model?: string;
  status?: number;
  code?: string;
  admission?: Admitted;
  meter?: ResponseMeter;
  usage?: Usage;
  costMicros?: number | null;
  call?: CallTelemetry;
  dlpCounts?: Record<string, number>;
  limitId?: string;
  entity?: string;
  /** `/{provider}{endpoint}` once routing succeeded; unrouted paths are the client's text. */
  route?: string;
  reservedBytes?: number;
}

export function createPipeline(options: PipelineOptions) {
  const { log } = options;
  let bufferedBytes = 0;
  const unpriced = new Set<string>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const exchange: Exchange = { started: performance.now() };
    try {
      await proxy(req, res, exchange);
    } catch (error) {
      refuse(res, exchange, toProxyError(error));
    } finally {
      bufferedBytes -= exchange.reservedBytes ?? 0;
      settle(exchange);
      accessLog(req, exchange);
    }
  }

  async function proxy(
    req: IncomingMessage,
    res: ServerResponse,
    exchange: Exchange,
  ): Promise<void> {
    const runtime = options.currentPolicy();
    if (!runtime)
      throw new ProxyError(
        'policy_unavailable',
        'this sidecar has no policy yet, so it allows nothing; retry shortly',
      );

    const target = checkRequestTarget(req.url ?? '');
    if (!target.ok && target.kind === 'no_endpoint') {
      throw new ProxyError(
        'route_not_found',
        'llmproxy serves /{provider}/... only, e.g. /openai/v1/chat/completions',
      );
    }
    if (!target.ok) throw new ProxyError('invalid_request', `bad request path: ${target.reason}`);
    const provider = runtime.providers.get(target.provider);
    if (!provider) {
      throw new ProxyError(
        'provider_not_found',
        `no provider named "${target.provider.slice(0, 63)}" is granted to this pod`,
      );
    }
    exchange.provider = provider;
    const adapter = adapterFor(provider.grant.type);
    exchange.adapter = adapter;
    const endpoint = adapter.endpoint(target.rest);
    if (!endpoint)
      throw new ProxyError(
        'route_not_found',
        `${provider.grant.type} endpoint ${target.rest.slice(0, 128)} is not proxied`,
      );
    exchange.route = `/${provider.grant.name}${target.rest}`;
    if (req.method !== 'POST') {
      throw new ProxyError('method_not_allowed', `${target.rest.slice(0, 128)} accepts POST only`, {
        allow: 'POST',
      });
    }
    if (!isJson(req.headers['content-type'])) {
      throw new ProxyError('unsupported_media_type', 'request body must be application/json');
    }

    const limit = Math.min(
      options.maxBodyBytes,
      runtime.policy.dataProtection?.maxRequestBytes ?? Infinity,
    );
    const declared = Number(req.headers['content-length']);
    const reserve = Number.isFinite(declared) ? Math.min(declared, limit) : limit;
    if (bufferedBytes + reserve > options.maxBufferedBytes) {
      throw new ProxyError(
        'overloaded',
        'the sidecar holds as many request bodies as its memory budget allows; retry shortly',
        { 'retry-after': '1' },
      );
    }
    bufferedBytes += reserve;
    exchange.reservedBytes = reserve;
    const raw = await readBoundedBody(req, limit);
    const parsed = parseJsonObject(raw);
    const model = adapter.requestedModel(parsed, endpoint);
    if (typeof model !== 'string' || !MODEL_NAME.test(model)) {
      throw new ProxyError(
        'invalid_request',
        'request must name a model as a string of printable characters',
      );
    }
    exchange.model = model;
    exchange.call = options.telemetry.startCall({
      operation: endpoint.operation,
      provider: provider.grant.name,
      providerType: provider.grant.type,
      requestModel: model,
      serverAddress: provider.target.hostname,
      serverPort: upstreamPort(provider.target),
      policyVersion: runtime.policy.version,
      incomingHeaders: req.headers,
      endUser: typeof parsed.user === 'string' ? parsed.user : undefined,
      captureContent: runtime.policy.telemetry?.captureContent === true,
    });

    const decision = provider.scope.decide(model);
    if (!decision.allowed) {
      throw new ProxyError(
        'model_not_allowed',
        `model "${model}" is not allowed for provider "${provider.grant.name}" by this pod's policy`,
      );
    }
    if (decision.maxOutputTokens !== undefined)
      adapter.capOutputTokens(parsed, endpoint, decision.maxOutputTokens);

    const verdict = protectRequest(provider.grant.type, parsed, runtime.policy.dataProtection);
    exchange.dlpCounts = verdict.counts;
    if (verdict.verdict === 'blocked') {
      throw new ProxyError(
        'content_blocked',
        `the request was blocked by data protection: it contains ${verdict.entity}`,
        {},
        undefined,
        { entity: verdict.entity },
      );
    }
    const body =
      verdict.verdict === 'redacted' ? (verdict.body as Record<string, unknown>) : parsed;
    exchange.call.recordContent('input', body);

    const streaming = adapter.isStreaming(body);
    // Streams report usage only when asked; the extra chunk is stripped if the client did not ask.
    const prepared = streaming
      ? prepareStreamingRequest(provider.grant.type, body)
      : { body, clientAskedForUsage: true };
    const estimatedInputTokens = estimateInputTokens(
      provider.grant.type,
      prepared.body,
      raw.length,
    );
    const maxOutputTokens =
      endpoint.operation === 'embeddings'
        ? 0
        : (adapter.statedOutputTokens(body) ?? DEFAULT_OUTPUT_RESERVATION);
    const admission = await options.limits.admit({
      provider: provider.grant.name,
      model,
      estimatedInputTokens,
      maxOutputTokens,
    });
    if (!admission.ok) throw limitRefusal(admission);
    exchange.admission = admission;
    if (options.budgets) {
      const pending = options.budgets.admit();
      const budget = pending instanceof Promise ? await pending : pending;
      if (!budget.ok) {
        throw new ProxyError(budget.code, budget.message, {}, undefined, {
          limitId: budget.budget,
        });
      }
    }
    exchange.meter = createResponseMeter(provider.grant.type, {
      streaming,
      stripUsageChunk: !prepared.clientAskedForUsage,
      requestModel: model,
      estimatedInputTokens,
    });

    const outgoing = Buffer.from(JSON.stringify(prepared.body));
    const url = upstreamUrl(provider, target.rest, target.query);
    await forward(req, res, exchange, {
      provider,
      adapter,
      endpoint,
      url,
      outgoing,
      streaming,
      traceHeaders: exchange.call.upstreamHeaders(),
    });
  }

  interface Prepared {
    provider: RuntimeProvider;
    adapter: ProviderAdapter;
    endpoint: Endpoint;
    url: URL;
    outgoing: Buffer;
    streaming: boolean;
    /** traceparent/tracestate continuing the application's trace. */
    traceHeaders: Record<string, string>;
  }

  async function forward(
    req: IncomingMessage,
    res: ServerResponse,
    exchange: Exchange,
    p: Prepared,
  ): Promise<void> {
    const name = p.provider.grant.name;
    let sent = await send(req, res, p);
    // A rejected key may just have been rotated: re-read it once and replay the (buffered) body.
    if (isAuthFailure(sent.response.status)) {
      sent.response.discard();
      const changed = await options.keys.refresh(name, sent.key).catch(() => false);
      if (changed) sent = await send(req, res, p);
      if (isAuthFailure(sent.response.status)) {
        sent.response.discard();
        throw new ProxyError(
          'credentials_unavailable',
          `provider "${name}" rejected the key llmproxy holds for it; the platform team must check the secret`,
        );
      }
    }
    await relay(res, sent.response, exchange, p);
  }

  async function send(
    req: IncomingMessage,
    res: ServerResponse,
    p: Prepared,
  ): Promise<{ response: UpstreamResponse; key: string | undefined }> {
    const name = p.provider.grant.name;
    const key = options.keys.peek(name) ?? (await options.keys.key(name));
    const headers = upstreamRequestHeaders(
      req.headers,
      p.adapter.defaultHeaders,
      p.traceHeaders,
      key === undefined ? {} : p.adapter.credentialHeaders(key),
    );
    try {
      const response = await options.upstream.send(
        { url: p.url, headers, body: p.outgoing, timeoutMs: options.upstreamTimeoutMs },
        res,
      );
      return { response, key };
    } catch (error) {
      throw toProxyError(error);
    }
  }

  function relay(
    res: ServerResponse,
    upstreamRes: UpstreamResponse,
    exchange: Exchange,
    p: Prepared,
  ): Promise<void> {
    const status = upstreamRes.status;
    exchange.status = status;
    // Added to the fresh object, not spread into a copy: in V8 (Node 20) a spread copy that gains
    // another property costs ~1-4 µs, ~25 µs per request under load here (make bench, #4).
    const headers = clientResponseHeaders(upstreamRes.headers);
    const limitHeaders = exchange.admission?.headers;
    if (limitHeaders) Object.assign(headers, limitHeaders);
    if (!p.streaming && upstreamRes.headers['content-length'] !== undefined) {
      headers['content-length'] = upstreamRes.headers['content-length'];
    }
    res.writeHead(status, headers);
    const meter = exchange.meter;
    // Time to first chunk is a streaming measure; the GenAI conventions leave it off other calls.
    let first = p.streaming;
    return new Promise((resolve) => {
      const onDrain = () => upstreamRes.resume();
      upstreamRes.read({
        data(chunk) {
          if (first) {
            first = false;
            exchange.call?.firstChunk();
          }
          const out = meter ? meter.push(chunk) : chunk;
          if (out.length > 0 && !res.write(out)) {
            upstreamRes.pause();
            res.once('drain', onDrain);
          }
        },
        end() {
          const tail = meter?.end();
          // An empty chunk is still a write through node:http; most answers have no tail.
          if (tail !== undefined && tail.length > 0) res.end(tail);
          else res.end();
          resolve();
        },
        error(failure) {
          // The client went away: the upstream request was aborted with it.
          if (failure.failure === 'client_closed') {
            exchange.code = 'client_closed';
            resolve();
            return;
          }
          // The provider failed or went silent mid-body: end the client's stream in a way its SDK
          // understands.
          const error =
            failure.failure === 'timeout'
              ? new ProxyError('upstream_timeout', 'the provider went silent mid-answer')
              : new ProxyError('upstream_unavailable', 'the provider closed the stream early');
          exchange.code = error.code;
          if (!res.writableEnded && !res.destroyed) {
            if (p.streaming) res.write(streamErrorEvent(error, p.provider.grant.type));
            res.end();
          }
          resolve();
        },
      });
    });
  }

  function refuse(res: ServerResponse, exchange: Exchange, error: ProxyError): void {
    exchange.code = error.code;
    exchange.status = error.status;
    exchange.limitId = error.detail.limitId;
    exchange.entity = error.detail.entity;
    if (res.headersSent || res.destroyed) {
      if (!res.writableEnded) res.end();
      return;
    }
    const response = errorResponse(error, exchange.adapter?.type as ProviderType | undefined);
    // A body we refused unread is still on the socket: close it rather than read it.
    const unread = !res.req.complete;
    res.writeHead(response.status, {
      ...response.headers,
      ...(unread ? { connection: 'close' } : {}),
    });
    res.end(response.body);
  }

  /** Every admitted request settles its reservation and frees its slot, however it ended. */
  function settle(exchange: Exchange): void {
    settleLimits(exchange);
    const status = exchange.status ?? 0;
    if (exchange.code !== undefined && POLICY_REFUSALS.has(exchange.code)) {
      exchange.call?.refused(exchange.code, {
        status,
        limitId: exchange.limitId,
        entity: exchange.entity,
        dlpCounts: exchange.dlpCounts,
      });
      return;
    }
    exchange.call?.finish({
      status,
      responseModel: exchange.usage?.responseModel,
      usage: exchange.usage,
      costMicros: exchange.costMicros,
      limitIds: exchange.admission?.limitIds,
      dlpCounts: exchange.dlpCounts,
      errorType: exchange.code,
    });
  }

  function settleLimits(exchange: Exchange): void {
    const { admission, provider, model } = exchange;
    if (!admission || !provider || !model) return;
    const succeeded = exchange.status !== undefined && exchange.status < 400;
    const usage = succeeded ? exchange.meter?.usage() : undefined;
    admission.settle(usage ?? { inputTokens: 0, outputTokens: 0 });
    admission.release();
    if (!usage) return;
    exchange.usage = usage;
    exchange.costMicros = costMicros(
      provider.grant.type,
      usage.responseModel ?? model,
      usage,
      options.currentPolicy()?.policy.pricing ?? [],
      provider.grant.name,
    );
    options.budgets?.spend(exchange.costMicros);
    if (exchange.costMicros === null && options.budgets) warnUnpriced(provider.grant.name, model);
    options.usageSink?.record({
      provider: provider.grant.name,
      model,
      usage,
      costMicros: exchange.costMicros,
      limitIds: admission.limitIds,
      status: exchange.status ?? 0,
      aborted: exchange.code === 'client_closed',
    });
  }

  /** A call with no known price costs a budget nothing: say so once per model, with the fix. */
  function warnUnpriced(provider: string, model: string): void {
    const key = `${provider}/${model}`;
    if (unpriced.has(key) || unpriced.size >= 256) return;
    unpriced.add(key);
    log.warn(
      'no price is known for this model: its calls are not counted against budgets; add a priceOverride to the LlmBudget',
      { event: 'unpriced_model', provider, model },
    );
  }

  function accessLog(req: IncomingMessage, exchange: Exchange): void {
    if (!options.accessLog) return;
    const caller = req.headers[CALLER_HEADER];
    logAccess(log, {
      method: req.method ?? '',
      route: exchange.route ?? '(unrouted)',
      provider: exchange.provider?.grant.name,
      model: exchange.model,
      status: exchange.status ?? 0,
      decision: decisionOf(exchange.code),
      code: exchange.code,
      durationMs: performance.now() - exchange.started,
      inputTokens: exchange.usage?.inputTokens,
      outputTokens: exchange.usage?.outputTokens,
      estimated: exchange.usage?.estimated,
      costMicros: exchange.costMicros,
      callerHash: typeof caller === 'string' ? options.telemetry.hashIdentifier(caller) : undefined,
      traceId: exchange.call?.traceId,
      limitIds: exchange.admission?.limitIds,
      dlpCounts: exchange.dlpCounts,
    });
  }

  return { handle };
}

/** Codes for requests the sidecar decided not to forward, as opposed to forwarded ones that failed. */
const POLICY_REFUSALS: ReadonlySet<string> = new Set([
  'model_not_allowed',
  'provider_not_found',
  'route_not_found',
  'method_not_allowed',
  'unsupported_media_type',
  'request_too_large',
  'invalid_request',
  'content_blocked',
  'rate_limited',
  'budget_exhausted',
  'overloaded',
  'policy_unavailable',
]);

function decisionOf(code: string | undefined): 'allowed' | 'refused' | 'error' {
  if (code === undefined || code === 'client_closed') return 'allowed';
  return POLICY_REFUSALS.has(code) ? 'refused' : 'error';
}

function upstreamPort(target: URL): number {
  if (target.port) return Number(target.port);
  return target.protocol === 'https:' ? 443 : 80;
}

function limitRefusal(refused: Refused): ProxyError {
  const code = refused.status === 503 ? 'overloaded' : 'rate_limited';
  // A request bigger than a whole bucket can never pass: tell SDKs not to retry it.
  const headers =
    refused.reason === 'never_fits'
      ? { ...refused.headers, 'x-should-retry': 'false' }
      : refused.headers;
  return new ProxyError(code, refused.message, headers, refused.status, {
    limitId: refused.limitId,
  });
}

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  if (contentType === 'application/json') return true;
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase();
  return type === 'application/json';
}

function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ProxyError('invalid_request', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProxyError('invalid_request', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function upstreamUrl(provider: RuntimeProvider, rest: string, query: string): URL {
  if (provider.grant.type !== 'azure-openai') {
    // Only known endpoint paths get here, so this per-policy cache stays a handful of entries.
    let url = provider.urls.get(rest);
    if (!url) {
      url = buildUpstreamUrl(provider, rest, '');
      provider.urls.set(rest, url);
    }
    return url;
  }
  return buildUpstreamUrl(provider, rest, query);
}

function buildUpstreamUrl(provider: RuntimeProvider, rest: string, query: string): URL {
  const base = provider.target;
  const url = new URL(base.href);
  url.pathname = `${base.pathname.replace(/\/$/, '')}${rest}`;
  url.search = '';
  if (provider.grant.type === 'azure-openai') {
    const requested = new URLSearchParams(query).get('api-version');
    const version =
      requested && AZURE_API_VERSION.test(requested) ? requested : provider.grant.apiVersion;
    if (version) url.searchParams.set('api-version', version);
  }
  return url;
}

function isAuthFailure(status: number | undefined): boolean {
  return status === 401 || status === 403;
}

function toProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  if (error instanceof ClientGoneError)
    return new ProxyError('invalid_request', 'client closed the connection');
  if (error instanceof UpstreamError) {
    return error.failure === 'timeout'
      ? new ProxyError('upstream_timeout', 'the provider did not answer in time')
      : new ProxyError('upstream_unavailable', 'the provider could not be reached');
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'credentials_unavailable') {
    return new ProxyError('credentials_unavailable', (error as Error).message);
  }
  return new ProxyError('upstream_unavailable', 'the request failed inside the proxy');
}
