// Which fields of a provider request or response carry prompt or completion text. Only these are
// scanned or rewritten; model names, ids, parameters and tool schemas are left alone.
import type { ProviderType } from '../policy/compiled.js';

export type TextVisitor = (text: string) => string;
type Mapper = (value: unknown) => unknown;
type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Rewrites `obj[key]` through `f`, copying `obj` only when the value changed. */
function field(key: string, f: Mapper): Mapper {
  return (obj) => {
    if (!isObject(obj) || !(key in obj)) return obj;
    const before = obj[key];
    const after = f(before);
    return after === before ? obj : { ...obj, [key]: after };
  };
}

/** Applies several field rewrites in turn. */
function fields(...mappers: Mapper[]): Mapper {
  return (obj) => mappers.reduce((acc, m) => m(acc), obj);
}

/** Rewrites each element of an array through `f`, copying the array only when one changed. */
function each(f: Mapper): Mapper {
  return (value) => {
    if (!Array.isArray(value)) return value;
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const after = f(value[i]);
      if (after !== value[i]) (out ??= value.slice())[i] = after;
    }
    return out ?? value;
  };
}

function text(visit: TextVisitor): Mapper {
  return (v) => (typeof v === 'string' ? visit(v) : v);
}

/** A string, or an array of strings and content parts whose `text` (or nested content) counts. */
function content(visit: TextVisitor): Mapper {
  const t = text(visit);
  const part: Mapper = (p) =>
    typeof p === 'string'
      ? visit(p)
      : fields(
          field('text', t),
          field('content', (c) => contentOf(c)),
          field('output', t),
        )(p);
  const contentOf: Mapper = (c) => (Array.isArray(c) ? each(part)(c) : t(c));
  return contentOf;
}

function openaiRequest(visit: TextVisitor): Mapper {
  const t = text(visit);
  const c = content(visit);
  const toolCalls = field('tool_calls', each(field('function', field('arguments', t))));
  const message = fields(field('content', c), toolCalls);
  // Responses API items: messages (content), tool call outputs (output), tool calls (arguments).
  const inputItem: Mapper = (item) =>
    typeof item === 'string'
      ? visit(item)
      : fields(field('content', c), field('output', t), field('arguments', t))(item);
  return fields(
    field('messages', each(message)),
    field('prompt', (p) => (Array.isArray(p) ? each(t)(p) : t(p))),
    field('input', (i) => (Array.isArray(i) ? each(inputItem)(i) : t(i))),
    field('instructions', t),
  );
}

function anthropicRequest(visit: TextVisitor): Mapper {
  const c = content(visit);
  return fields(field('system', c), field('messages', each(field('content', c))));
}

function openaiResponse(visit: TextVisitor): Mapper {
  const t = text(visit);
  const c = content(visit);
  const toolCalls = field('tool_calls', each(field('function', field('arguments', t))));
  const choice = fields(
    field('message', fields(field('content', t), field('refusal', t), toolCalls)),
    field('text', t),
  );
  const outputItem = fields(field('content', c), field('arguments', t));
  return fields(field('choices', each(choice)), field('output', each(outputItem)));
}

function anthropicResponse(visit: TextVisitor): Mapper {
  return field('content', content(visit));
}

/** Returns `body` with every prompt text field passed through `visit`; unchanged parts are shared. */
export function mapRequestText(
  providerType: ProviderType,
  body: unknown,
  visit: TextVisitor,
): unknown {
  return (providerType === 'anthropic' ? anthropicRequest : openaiRequest)(visit)(body);
}

/** Returns `body` with every completion text field passed through `visit`. */
export function mapResponseText(
  providerType: ProviderType,
  body: unknown,
  visit: TextVisitor,
): unknown {
  return (providerType === 'anthropic' ? anthropicResponse : openaiResponse)(visit)(body);
}
