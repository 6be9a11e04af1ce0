// Structured JSON logs. Only fields on an allowlist leave the process, every string is masked for
// known secret values, and long strings are cut; everything else is dropped, never printed.
import type { Writable } from 'node:stream';
import winston from 'winston';
import { knownSecrets, maskSecrets, type SecretSource } from './secrets.js';
import { safeModel, safeToken } from './values.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export type LogFields = Record<string, string | number | boolean | null | undefined | string[]>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

/** Field names allowed into a log line. A field not listed here is dropped, never printed. */
export const LOG_FIELD_ALLOWLIST: ReadonlySet<string> = new Set([
  'component',
  'event',
  'listen',
  'admin',
  'url',
  'path',
  'file',
  'reason',
  'code',
  'status',
  'method',
  'route',
  'provider',
  'model',
  'decision',
  'policyVersion',
  'providers',
  'durationMs',
  'inputTokens',
  'outputTokens',
  'costMicros',
  'estimated',
  'limitIds',
  'limitId',
  'caller',
  'requestId',
  'attempt',
  'delayMs',
  'secretId',
  'version',
  'count',
  'mode',
  'error',
  'dlp',
  'entity',
  'traceId',
  'outcome',
]);

/** Strings longer than this are cut, so a stray body cannot flood a line. */
export const MAX_LOG_STRING = 1024;

export interface LoggerOptions {
  level?: LogLevel;
  component?: string;
  /** Where JSON lines go (one per entry); stderr when absent. Tests pass a capturing stream. */
  stream?: Writable;
  /** Secret values to mask, in addition to those from registerSecretSource. */
  secretValues?: SecretSource;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] });
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(
      allowlist(),
      scrub(options.secretValues),
      winston.format.timestamp(),
      winston.format.json(),
    ),
    defaultMeta: options.component ? { component: options.component } : {},
    transports: [transport],
  });
  return {
    error: (message, fields) => logger.error(message, fields),
    warn: (message, fields) => logger.warn(message, fields),
    info: (message, fields) => logger.info(message, fields),
    debug: (message, fields) => logger.debug(message, fields),
  };
}

const allowlist = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key !== 'level' && key !== 'message' && !LOG_FIELD_ALLOWLIST.has(key)) delete info[key];
  }
  return info;
});

function scrub(extra: SecretSource | undefined) {
  return winston.format((info) => {
    const secrets = knownSecrets(extra);
    const clean = (s: string) => {
      const masked = secrets.length > 0 ? maskSecrets(s, secrets) : s;
      return masked.length > MAX_LOG_STRING ? `${masked.slice(0, MAX_LOG_STRING)}…` : masked;
    };
    for (const key of Object.keys(info)) {
      const value = info[key];
      if (typeof value === 'string') info[key] = clean(value);
      else if (Array.isArray(value))
        info[key] = value.map((v) => (typeof v === 'string' ? clean(v) : v));
      else if (value !== null && typeof value === 'object') delete info[key];
    }
    return info;
  })();
}

/**
 * The log level: the `--log-level` flag if given, else `LLMPROXY_LOG_LEVEL`, else info. Callers
 * pass both in from their parsed configuration; unknown values are an error, not a silent default.
 */
export function resolveLogLevel(flag: string | undefined, env: string | undefined): LogLevel {
  const value = (flag ?? env ?? 'info').trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new RangeError(`log level must be one of ${LOG_LEVELS.join(', ')}`);
}

/** One access-log line per request: metadata only, never content, headers or provider messages. */
export interface AccessLogEntry {
  method: string;
  /** The matched route (`/openai/v1/chat/completions`), without query string. */
  route: string;
  provider?: string;
  model?: string;
  status: number;
  decision: string;
  /** The stable refusal or error code, when there is one. */
  code?: string;
  inputTokens?: number;
  outputTokens?: number;
  /** True when the provider reported no usage and the tokens were counted locally. */
  estimated?: boolean;
  costMicros?: number | null;
  durationMs: number;
  /** Already hashed with Telemetry.hashIdentifier. */
  callerHash?: string;
  requestId?: string;
  traceId?: string;
  limitIds?: string[];
  dlpCounts?: Record<string, number>;
}

export function logAccess(log: Logger, entry: AccessLogEntry): void {
  const { callerHash, dlpCounts, durationMs, model, code, ...rest } = entry;
  log.info('request', {
    event: 'access',
    ...rest,
    // The model is whatever the client sent, and the code may come from a provider: shape-checked.
    model: safeModel(model),
    code: code === undefined ? undefined : safeToken(code),
    durationMs: Math.round(durationMs * 1000) / 1000,
    caller: callerHash,
    dlp: dlpCounts ? Object.entries(dlpCounts).map(([k, v]) => `${k}=${v}`) : undefined,
  });
}
