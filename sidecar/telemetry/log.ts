// Structured JSON logs. Only fields on an allowlist leave the process; everything else is dropped.
import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
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
]);

export function createLogger(options: { level?: LogLevel; component?: string } = {}): Logger {
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    format: winston.format.combine(allowlist(), winston.format.timestamp(), winston.format.json()),
    defaultMeta: options.component ? { component: options.component } : {},
    transports: [
      new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
    ],
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
