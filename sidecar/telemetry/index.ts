// Traces and metrics for every call through the sidecar, built so that the telemetry itself cannot
// leak: attributes pass an allowlist, known secret values are dropped, identifiers are hashed,
// provider messages are never recorded, and content is captured only on opt-in and redacted.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator, setGlobalErrorHandler } from '@opentelemetry/core';
import type { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  RandomIdGenerator,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ProviderType } from '../policy/compiled.js';
import * as A from './attributes.js';
import { captureText } from './content.js';
import { attributeKey, createSummedCounter } from './counters.js';
import { createHistogramTable } from './histograms.js';
import { createIdentifierHasher } from './hmac.js';
import type { Logger } from './log.js';
import { RedactingSpanProcessor, sanitizeAttributes } from './redaction.js';
import { createSecretsView, type SecretSource } from './secrets.js';
import { safeModel, safeToken } from './values.js';

export { createLogger, logAccess, resolveLogLevel } from './log.js';
export type { AccessLogEntry, LogFields, LogLevel, Logger, LoggerOptions } from './log.js';
export { registerSecretSource } from './secrets.js';
export { safeModel, safeToken } from './values.js';
export type { SecretSource } from './secrets.js';
export type { TelemetrySettings } from './schema.js';

export const CALLER_HEADER = 'x-llmproxy-user';
const SCOPE = 'llmproxy-sidecar';
const TOKEN_TYPE_KEY = `${A.ATTR_GEN_AI_TOKEN_TYPE}\u0001`;
/** Distinct call shapes (and outcomes per shape) kept; past it the cache starts over. */
const MAX_CACHED_SHAPES = 256;

/** The attribute sets shared by every call with the same route and model. */
interface CallShape {
  /** The secret values these sets were sanitized against. */
  held: readonly string[];
  spanName: string;
  genAi: Attributes;
  genAiKey: string;
  ours: Attributes;
  common: Attributes;
  cost: Attributes;
  costKey: string;
  outcomes: Map<string, OutcomeShape>;
}

interface OutcomeShape {
  span: Attributes;
  requests: Attributes;
  requestsKey: string;
  withResponse: Attributes;
  responseKey: string;
  inputTokens: { attributes: Attributes; key: string };
  outputTokens: { attributes: Attributes; key: string };
}

export interface CallInfo {
  /** gen_ai.operation.name: `chat`, `text_completion`, `embeddings`, ... (see operationFor). */
  operation: string;
  /** The provider's route name in the policy. */
  provider: string;
  providerType: ProviderType;
  requestModel?: string;
  /** Host of the real upstream (not the sidecar). */
  serverAddress?: string;
  serverPort?: number;
  policyVersion: string;
  incomingHeaders: IncomingHttpHeaders;
  /** The OpenAI `user` field, raw: it is hashed here before it is recorded. */
  endUser?: string;
  /** The policy's telemetry.captureContent. */
  captureContent?: boolean;
}

export interface CallOutcome {
  status: number;
  responseModel?: string;
  usage?: { inputTokens: number; outputTokens: number };
  costMicros?: number | null;
  limitIds?: string[];
  dlpCounts?: Record<string, number>;
  /** Low-cardinality error class (`upstream_timeout`, `ECONNRESET`), never a message. */
  errorType?: string;
}

export interface CallTelemetry {
  /** W3C traceparent/tracestate continuing the application's trace, for the upstream request. */
  upstreamHeaders(): Record<string, string>;
  /** Ends the call as refused by policy (span + metrics). Exactly one of refused/finish counts. */
  refused(
    code: string,
    details?: {
      status?: number;
      limitId?: string;
      entity?: string;
      dlpCounts?: Record<string, number>;
    },
  ): void;
  /** Marks the first response chunk of a stream (time to first chunk); streamed calls only. */
  firstChunk(): void;
  /** Records request or response text, only if the policy opted in; redacted and truncated. */
  recordContent(kind: 'input' | 'output', body: unknown): void;
  /** Ends the call after the upstream answered (or failed). */
  finish(outcome: CallOutcome): void;
  /** The trace id, for the access log. */
  readonly traceId: string;
}

export interface Telemetry {
  startCall(info: CallInfo): CallTelemetry;
  /** HMAC-SHA256 with the per-deployment key, 32 hex characters. */
  hashIdentifier(value: string): string;
  /** Prometheus text exposition of all metrics, for the admin listener's /metrics. */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  recordCredentialRefresh(provider: string, outcome: 'ok' | 'error'): void;
  /** Flushes exporters. */
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  hmacKey: Buffer;
  log: Logger;
  /** Secret values to drop, in addition to those from registerSecretSource (tests use it). */
  secretValues?: SecretSource;
  /**
   * Export over OTLP/HTTP with these exporters (loadOtlpExporters); endpoint, headers and protocol
   * come from the standard OTEL_* variables.
   */
  otlp?: OtlpExporters;
  /** Overrides the OTLP base URL (`http://host:4318`); tests use it. */
  otlpEndpoint?: string;
  metricExportIntervalMs?: number;
  /** An extra exporter behind the same redaction (tests); spans are exported one by one. */
  spanExporter?: SpanExporter;
}

/** The OTLP/HTTP exporter classes. */
export interface OtlpExporters {
  trace: typeof OTLPTraceExporter;
  metrics: typeof OTLPMetricExporter;
}

/**
 * Loads the OTLP/HTTP exporters. Only a process that exports over OTLP loads them: they cost about
 * 1.5 MB of resident memory and startup time (docs/benchmarks.md); /metrics needs neither.
 */
export async function loadOtlpExporters(): Promise<OtlpExporters> {
  const [trace, metrics] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/exporter-metrics-otlp-http'),
  ]);
  return { trace: trace.OTLPTraceExporter, metrics: metrics.OTLPMetricExporter };
}

/** The telemetry options the standard OTEL_* variables decide, parsed once at startup. */
export async function telemetryOptionsFromEnv(
  env: NodeJS.ProcessEnv,
): Promise<Pick<TelemetryOptions, 'otlp' | 'metricExportIntervalMs'>> {
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  return {
    ...(otlpEnabledFromEnv(env) ? { otlp: await loadOtlpExporters() } : {}),
    ...(Number.isInteger(interval) && interval > 0 ? { metricExportIntervalMs: interval } : {}),
  };
}

/** OTLP is on when any standard endpoint variable is set. */
export function otlpEnabledFromEnv(env: NodeJS.ProcessEnv): boolean {
  return Boolean(
    env.OTEL_EXPORTER_OTLP_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
    env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
  );
}

/** gen_ai.operation.name for a provider path. */
export function operationFor(path: string): string {
  if (/\/chat\/completions$/.test(path) || /\/messages$/.test(path)) return 'chat';
  if (/\/completions$/.test(path)) return 'text_completion';
  if (/\/embeddings$/.test(path)) return 'embeddings';
  if (/\/responses$/.test(path)) return 'chat';
  return 'generate_content';
}

/** gen_ai.provider.name: the well-known value for the type, the route name for other servers. */
export function providerNameFor(providerType: ProviderType, provider: string): string {
  if (providerType === 'openai') return 'openai';
  if (providerType === 'anthropic') return 'anthropic';
  if (providerType === 'azure-openai') return 'azure.ai.openai';
  return provider;
}

export function createTelemetry(options: TelemetryOptions): Telemetry {
  const hash = createIdentifierHasher(options.hmacKey);
  // Export failures are logged without their detail (a collector's error body is not ours to
  // print), at most once a minute.
  let lastExportError = -Infinity;
  setGlobalErrorHandler(() => {
    const now = Date.now();
    if (now - lastExportError < 60_000) return;
    lastExportError = now;
    options.log.warn('telemetry export failed; retrying with the next batch', {
      component: 'telemetry',
      event: 'export_failed',
    });
  });
  const secrets = createSecretsView(options.secretValues);
  const resource = resourceFromAttributes({
    'service.name': options.serviceName,
    ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
  });
  const base = options.otlpEndpoint?.replace(/\/+$/, '');

  const exporters: SpanProcessor[] = [];
  if (options.otlp) {
    const exporter = new options.otlp.trace(base ? { url: `${base}/v1/traces` } : {});
    exporters.push(new BatchSpanProcessor(exporter));
  }
  if (options.spanExporter) exporters.push(new SimpleSpanProcessor(options.spanExporter));
  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: exporters.map(
      (p) => new RedactingSpanProcessor(p, A.SPAN_ATTRIBUTE_ALLOWLIST, secrets),
    ),
  });
  const tracer = tracerProvider.getTracer(SCOPE, options.serviceVersion);
  // With nowhere to export spans, recording them is wasted work: a non-recording span that keeps
  // the caller's trace id and sampling flag still continues the trace upstream.
  const ids = new RandomIdGenerator();
  const recording = exporters.length > 0;
  const startSpan: typeof tracer.startSpan = recording
    ? (name, spanOptions, context) => tracer.startSpan(name, spanOptions, context)
    : (_name, _spanOptions, context) => {
        const parentContext = context ? trace.getSpanContext(context) : undefined;
        return trace.wrapSpanContext({
          traceId: parentContext?.traceId ?? ids.generateTraceId(),
          spanId: ids.generateSpanId(),
          traceFlags: parentContext?.traceFlags ?? TraceFlags.SAMPLED,
          ...(parentContext?.traceState ? { traceState: parentContext.traceState } : {}),
        });
      };

  const histograms = createHistogramTable({ name: SCOPE, version: options.serviceVersion });
  const prometheus = new PrometheusExporter({
    preventServerStart: true,
    withoutScopeInfo: true,
    metricProducers: [histograms.producer],
  });
  // The OpenTelemetry packages are pinned to one release line (package.json) so that the SDK,
  // the exporters and the global error handler are single copies.
  const readers: MetricReader[] = [prometheus];
  if (options.otlp) {
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new options.otlp.metrics(base ? { url: `${base}/v1/metrics` } : {}),
        exportIntervalMillis: options.metricExportIntervalMs ?? 60_000,
        metricProducers: [histograms.producer],
      }),
    );
  }
  const meterProvider = new MeterProvider({ resource, readers });
  const meter = meterProvider.getMeter(SCOPE, options.serviceVersion);
  const instruments = {
    duration: histograms.histogram(A.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, {
      unit: 's',
      description: 'GenAI operation duration.',
      boundaries: A.DURATION_BUCKETS_SECONDS,
    }),
    tokens: histograms.histogram(A.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, {
      unit: '{token}',
      description: 'Number of input and output tokens used.',
      boundaries: A.TOKEN_BUCKETS,
    }),
    firstChunk: histograms.histogram(A.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK, {
      unit: 's',
      description: 'Time to receive the first chunk of a streamed response.',
      boundaries: A.DURATION_BUCKETS_SECONDS,
    }),
    requests: createSummedCounter(meter, A.METRIC_LLMPROXY_REQUESTS, {
      unit: '{request}',
      description: 'Requests by policy decision.',
    }),
    cost: createSummedCounter(meter, A.METRIC_LLMPROXY_COST, {
      unit: '{microdollar}',
      description: 'Spend in millionths of a US dollar.',
    }),
    limiterRejections: createSummedCounter(meter, A.METRIC_LLMPROXY_LIMITER_REJECTIONS, {
      unit: '{request}',
      description: 'Requests refused by a rate limit.',
    }),
    credentialRefreshes: createSummedCounter(meter, A.METRIC_LLMPROXY_CREDENTIAL_REFRESHES, {
      unit: '{refresh}',
      description: 'Provider credential refreshes by outcome.',
    }),
    dlpDetections: createSummedCounter(meter, A.METRIC_LLMPROXY_DLP_DETECTIONS, {
      unit: '{detection}',
      description: 'Data-protection detections by entity type (never values).',
    }),
  };
  const metricAttributes = (attrs: Attributes, held: readonly string[]): Attributes =>
    sanitizeAttributes(attrs, A.METRIC_ATTRIBUTE_ALLOWLIST, held).attributes;
  const propagator = new W3CTraceContextPropagator();

  // The attribute sets of a call depend only on its route, model and outcome, and on the secret
  // values (a value holding one is dropped). Building and sanitizing them per request was most of
  // the telemetry's cost, so they are built once per distinct call and reused while the secrets
  // array (stable by identity while unchanged) is the same.
  const shapes = new Map<string, CallShape>();
  function shapeOf(info: CallInfo, held: readonly string[]): CallShape {
    const key = `${info.operation}\u0001${info.providerType}\u0001${info.provider}\u0001${info.requestModel}\u0001${info.serverAddress}\u0001${info.serverPort}`;
    const cached = shapes.get(key);
    if (cached !== undefined && cached.held === held) return cached;
    if (shapes.size >= MAX_CACHED_SHAPES) shapes.clear();
    const requestModel = safeModel(info.requestModel);
    const operation = safeToken(info.operation);
    const genAi = metricAttributes(
      {
        [A.ATTR_GEN_AI_OPERATION_NAME]: operation,
        [A.ATTR_GEN_AI_PROVIDER_NAME]: providerNameFor(info.providerType, info.provider),
        ...(requestModel ? { [A.ATTR_GEN_AI_REQUEST_MODEL]: requestModel } : {}),
        ...(info.serverAddress ? { [A.ATTR_SERVER_ADDRESS]: info.serverAddress } : {}),
        ...(info.serverPort ? { [A.ATTR_SERVER_PORT]: info.serverPort } : {}),
      },
      held,
    );
    const ours = metricAttributes(
      { [A.ATTR_GEN_AI_OPERATION_NAME]: operation, [A.ATTR_LLMPROXY_PROVIDER]: info.provider },
      held,
    );
    const model = genAi[A.ATTR_GEN_AI_REQUEST_MODEL];
    const cost = {
      ...ours,
      ...(model !== undefined ? { [A.ATTR_GEN_AI_REQUEST_MODEL]: model } : {}),
    };
    const shape: CallShape = {
      held,
      spanName: requestModel ? `${operation} ${requestModel}` : operation,
      genAi,
      genAiKey: attributeKey(genAi),
      ours,
      common: { ...genAi, [A.ATTR_LLMPROXY_PROVIDER]: info.provider },
      cost,
      costKey: attributeKey(cost),
      outcomes: new Map(),
    };
    shapes.set(key, shape);
    return shape;
  }

  /** The metric attribute sets (and their keys) of one outcome of a call shape. */
  function outcomeOf(
    shape: CallShape,
    decision: A.Decision,
    errorType: string | undefined,
    code: string | undefined,
    responseModel: string | undefined,
  ): OutcomeShape {
    const key = `${decision}\u0001${errorType}\u0001${code}\u0001${responseModel}`;
    const cached = shape.outcomes.get(key);
    if (cached !== undefined) return cached;
    if (shape.outcomes.size >= MAX_CACHED_SHAPES) shape.outcomes.clear();
    const { held } = shape;
    const outcome: Attributes = {
      [A.ATTR_LLMPROXY_DECISION]: decision,
      ...(errorType ? { [A.ATTR_ERROR_TYPE]: safeToken(errorType) } : {}),
      ...(code ? { [A.ATTR_LLMPROXY_REFUSAL_CODE]: safeToken(code) } : {}),
    };
    const requests = metricAttributes({ ...shape.ours, ...outcome }, held);
    const error = outcome[A.ATTR_ERROR_TYPE];
    const withResponse = metricAttributes(
      {
        ...shape.genAi,
        ...(error !== undefined ? { [A.ATTR_ERROR_TYPE]: error } : {}),
        ...(responseModel ? { [A.ATTR_GEN_AI_RESPONSE_MODEL]: responseModel } : {}),
      },
      held,
    );
    const responseKey = attributeKey(withResponse);
    const tokens = (type: string) => ({
      attributes: { ...withResponse, [A.ATTR_GEN_AI_TOKEN_TYPE]: type },
      key: `${responseKey}${TOKEN_TYPE_KEY}${type}\u0002`,
    });
    const shaped: OutcomeShape = {
      span: outcome,
      requests,
      requestsKey: attributeKey(requests),
      withResponse,
      responseKey,
      inputTokens: tokens(A.GEN_AI_TOKEN_TYPE_INPUT),
      outputTokens: tokens(A.GEN_AI_TOKEN_TYPE_OUTPUT),
    };
    shape.outcomes.set(key, shaped);
    return shaped;
  }

  /**
   * A recorded span's starting attributes. Built by assignment: in V8 (Node 20) a spread copy that
   * gains properties costs ~1 µs per call.
   */
  function spanAttributes(info: CallInfo, common: Attributes): Attributes {
    const attributes: Attributes = Object.assign({}, common);
    attributes[A.ATTR_LLMPROXY_POLICY_VERSION] = info.policyVersion;
    const caller = headerValue(info.incomingHeaders[CALLER_HEADER]);
    if (caller) attributes[A.ATTR_LLMPROXY_CALLER_HASH] = hash(caller);
    if (info.endUser) attributes[A.ATTR_USER_HASH] = hash(info.endUser);
    return attributes;
  }

  function startCall(info: CallInfo): CallTelemetry {
    const started = performance.now();
    const parent = propagator.extract(ROOT_CONTEXT, info.incomingHeaders, defaultTextMapGetter);
    const held = secrets();
    const shape = shapeOf(info, held);
    const { genAi, genAiKey, ours, common } = shape;
    const span: Span = startSpan(
      shape.spanName,
      // A span with nowhere to go records nothing: do not hash identifiers for it.
      recording
        ? { kind: SpanKind.CLIENT, attributes: spanAttributes(info, common) }
        : { kind: SpanKind.CLIENT },
      parent,
    );
    let ended = false;
    let firstChunkAt: number | undefined;

    const recordDlp = (counts: Record<string, number> | undefined) => {
      for (const [entity, count] of Object.entries(counts ?? {})) {
        if (!Number.isInteger(count) || count <= 0) continue;
        span.setAttribute(A.ATTR_LLMPROXY_DLP_COUNT_PREFIX + entity, count);
        instruments.dlpDetections.add(
          count,
          metricAttributes({ ...ours, [A.ATTR_LLMPROXY_DLP_ENTITY]: entity }, held),
        );
      }
    };

    const end = (
      status: number,
      errorType: string | undefined,
      decision: A.Decision,
      code?: string,
      responseModel?: string,
    ): { seconds: number; outcome: OutcomeShape } => {
      ended = true;
      const seconds = (performance.now() - started) / 1000;
      const outcome = outcomeOf(shape, decision, errorType, code, responseModel);
      span.setAttributes(outcome.span);
      span.setAttribute(A.ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      // The status carries no description: provider messages echo prompts.
      if (errorType) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      instruments.requests.add(1, outcome.requests, outcome.requestsKey);
      return { seconds, outcome };
    };

    return {
      traceId: span.spanContext().traceId,
      upstreamHeaders() {
        const headers: Record<string, string> = {};
        propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
        return headers;
      },
      refused(code, details = {}) {
        if (ended) return;
        if (details.limitId) span.setAttribute(A.ATTR_LLMPROXY_LIMIT_ID, details.limitId);
        if (details.entity) span.setAttribute(A.ATTR_LLMPROXY_DLP_ENTITY, details.entity);
        recordDlp(details.dlpCounts);
        end(details.status ?? 400, code, 'refused', code);
        if (details.limitId)
          instruments.limiterRejections.add(
            1,
            metricAttributes({ ...ours, [A.ATTR_LLMPROXY_LIMIT_ID]: details.limitId }, held),
          );
      },
      firstChunk() {
        if (ended || firstChunkAt !== undefined) return;
        firstChunkAt = performance.now();
        const seconds = (firstChunkAt - started) / 1000;
        span.setAttribute(A.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, seconds);
        instruments.firstChunk.record(seconds, genAi, genAiKey);
      },
      recordContent(kind, body) {
        if (ended || info.captureContent !== true) return;
        const text = captureText(info.providerType, kind, body, held);
        if (text === undefined) return;
        span.setAttribute(
          kind === 'input' ? A.ATTR_LLMPROXY_CONTENT_INPUT : A.ATTR_LLMPROXY_CONTENT_OUTPUT,
          text,
        );
      },
      finish(outcome) {
        if (ended) return;
        const responseModel = safeModel(outcome.responseModel);
        if (responseModel) span.setAttribute(A.ATTR_GEN_AI_RESPONSE_MODEL, responseModel);
        if (outcome.usage) {
          span.setAttribute(A.ATTR_GEN_AI_USAGE_INPUT_TOKENS, outcome.usage.inputTokens);
          span.setAttribute(A.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, outcome.usage.outputTokens);
        }
        if (typeof outcome.costMicros === 'number')
          span.setAttribute(A.ATTR_LLMPROXY_COST_MICROS, outcome.costMicros);
        if (outcome.limitIds?.length)
          span.setAttribute(A.ATTR_LLMPROXY_LIMIT_IDS, outcome.limitIds);
        recordDlp(outcome.dlpCounts);
        const errorType =
          outcome.errorType ?? (outcome.status >= 400 ? String(outcome.status) : undefined);
        const redacted = Object.values(outcome.dlpCounts ?? {}).some((n) => n > 0);
        const { seconds, outcome: shaped } = end(
          outcome.status,
          errorType,
          redacted ? 'redacted' : 'allowed',
          undefined,
          responseModel,
        );
        instruments.duration.record(seconds, shaped.withResponse, shaped.responseKey);
        if (outcome.usage) {
          const { inputTokens, outputTokens } = shaped;
          instruments.tokens.record(
            outcome.usage.inputTokens,
            inputTokens.attributes,
            inputTokens.key,
          );
          instruments.tokens.record(
            outcome.usage.outputTokens,
            outputTokens.attributes,
            outputTokens.key,
          );
        }
        if (typeof outcome.costMicros === 'number' && outcome.costMicros > 0)
          instruments.cost.add(outcome.costMicros, shape.cost, shape.costKey);
      },
    };
  }

  return {
    startCall,
    hashIdentifier: hash,
    metricsHandler(req, res) {
      prometheus.getMetricsRequestHandler(req, res);
    },
    recordCredentialRefresh(provider, outcome) {
      instruments.credentialRefreshes.add(
        1,
        metricAttributes(
          { [A.ATTR_LLMPROXY_PROVIDER]: provider, [A.ATTR_LLMPROXY_OUTCOME]: outcome },
          secrets(),
        ),
      );
    },
    async forceFlush() {
      await Promise.all([tracerProvider.forceFlush(), meterProvider.forceFlush()]);
    },
    async shutdown() {
      const results = await Promise.allSettled([
        tracerProvider.shutdown(),
        meterProvider.shutdown(),
      ]);
      for (const r of results)
        if (r.status === 'rejected')
          options.log.warn('telemetry shutdown failed', {
            component: 'telemetry',
            reason: 'export',
          });
    },
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v && v.length > 0 ? v : undefined;
}
