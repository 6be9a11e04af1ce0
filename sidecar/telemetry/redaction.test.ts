import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { RedactingSpanProcessor, sanitizeAttributes } from './redaction.js';

const secret = () => ['sk', 'proj', randomBytes(20).toString('hex')].join('-');

function tracerWith(allow: string[], secrets: string[]) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [
      new RedactingSpanProcessor(new SimpleSpanProcessor(exporter), new Set(allow), () => secrets),
    ],
  });
  return { tracer: provider.getTracer('t'), exporter };
}

describe('RedactingSpanProcessor', () => {
  it('exports only allowlisted attributes', () => {
    const { tracer, exporter } = tracerWith(['gen_ai.request.model'], []);
    const span = tracer.startSpan('chat m', { kind: SpanKind.CLIENT });
    span.setAttributes({
      'gen_ai.request.model': 'm',
      'http.request.header.authorization': 'Bearer x',
      'gen_ai.input.messages': 'hello',
    });
    span.end();
    const [out] = exporter.getFinishedSpans();
    expect(out!.attributes).toEqual({ 'gen_ai.request.model': 'm' });
    expect(out!.droppedAttributesCount).toBe(2);
  });

  it('drops allowlisted attributes, events and status messages that carry a known secret', () => {
    const key = secret();
    const { tracer, exporter } = tracerWith(['a', 'b', 'c'], [key]);
    const span = tracer.startSpan(`chat ${key}`);
    span.setAttributes({ a: `x${key}y`, b: ['ok', key], c: 'fine' });
    span.addEvent('exception', { 'exception.message': `bad key ${key}` });
    span.recordException(new Error(`upstream said: ${key}`));
    span.setStatus({ code: 2, message: `failed with ${key}` });
    span.end();
    const [out] = exporter.getFinishedSpans();
    expect(out!.attributes).toEqual({ c: 'fine' });
    expect(out!.events).toEqual([]);
    expect(out!.status).toEqual({ code: 2 });
    expect(out!.name).toBe('llmproxy');
    expect(JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(
      key,
    );
  });
});

describe('sanitizeAttributes', () => {
  it('never lets a secret-bearing value or an unlisted name through, for any attributes', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.array(fc.string()))),
        fc.string({ minLength: 8 }),
        (attrs, key) => {
          const withSecret = { ...attrs, leak: `pre${key}post`, listed: 'ok' };
          const allow = new Set(['leak', 'listed', ...Object.keys(attrs).slice(0, 2)]);
          const { attributes } = sanitizeAttributes(withSecret, allow, [key]);
          for (const [name, value] of Object.entries(attributes)) {
            expect(allow.has(name)).toBe(true);
            for (const v of Array.isArray(value) ? value : [value])
              if (typeof v === 'string') expect(v.includes(key)).toBe(false);
          }
          expect(attributes.leak).toBeUndefined();
          expect(attributes.listed).toBe('ok');
        },
      ),
    );
  });
});
