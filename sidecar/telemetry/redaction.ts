// Structural redaction for telemetry: spans and metric attributes pass through an allowlist of
// attribute names, and any value containing a known secret is dropped, whoever set it.
import type { Attributes, AttributeValue, Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { containsSecret } from './secrets.js';

/** Attribute strings longer than this are cut: no legitimate attribute of ours is longer. */
export const MAX_ATTRIBUTE_LENGTH = 2048;

/** Keeps allowlisted attributes whose values hold no secret; strings are length-capped. */
export function sanitizeAttributes(
  attributes: Attributes,
  allowlist: ReadonlySet<string>,
  secrets: readonly string[],
): { attributes: Attributes; dropped: number } {
  const out: Attributes = {};
  let dropped = 0;
  for (const key in attributes) {
    const clean = allowlist.has(key) ? sanitizeValue(attributes[key], secrets) : undefined;
    if (clean === undefined) dropped++;
    else out[key] = clean;
  }
  return { attributes: out, dropped };
}

function sanitizeValue(
  value: AttributeValue | undefined,
  secrets: readonly string[],
): AttributeValue | undefined {
  if (typeof value === 'string') return cleanString(value, secrets);
  if (Array.isArray(value)) {
    if (value.some((v) => typeof v === 'string' && cleanString(v, secrets) !== v)) return undefined;
    return value;
  }
  return value;
}

function cleanString(value: string, secrets: readonly string[]): string | undefined {
  if (containsSecret(value, secrets)) return undefined;
  return value.length > MAX_ATTRIBUTE_LENGTH ? value.slice(0, MAX_ATTRIBUTE_LENGTH) : value;
}

/**
 * The exportable view of a span: allowlisted attributes only, no events (exception events carry
 * messages that echo provider bodies), no status message, no link attributes, and a generic name
 * if the name itself holds a secret.
 */
export function sanitizeSpan(
  span: ReadableSpan,
  allowlist: ReadonlySet<string>,
  secrets: readonly string[],
): ReadableSpan {
  const { attributes, dropped } = sanitizeAttributes(span.attributes, allowlist, secrets);
  return {
    name: containsSecret(span.name, secrets) ? 'llmproxy' : span.name,
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status: { code: span.status.code },
    attributes,
    links: span.links.map((link) => ({ context: link.context })),
    events: [],
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount + dropped,
    droppedEventsCount: span.droppedEventsCount + span.events.length,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Wraps the exporting processor so that it only ever sees sanitized spans. */
export class RedactingSpanProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly allowlist: ReadonlySet<string>,
    private readonly secrets: () => readonly string[],
  ) {}

  onStart(_span: Span, _parentContext: Context): void {
    // The inner processor never sees a live span: only the sanitized copy at the end.
  }

  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(sanitizeSpan(span, this.allowlist, this.secrets()));
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
