import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger, logAccess, resolveLogLevel, type LoggerOptions } from './log.js';
import { registerSecretSource } from './secrets.js';

function capture(options: Omit<LoggerOptions, 'stream'> = {}) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger({ ...options, stream });
  const entries = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, entries };
}

/** winston writes asynchronously through the stream transport. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('createLogger', () => {
  it('writes JSON lines with only allowlisted fields', async () => {
    const { log, entries } = capture({ component: 'proxy' });
    log.info('forwarded', {
      provider: 'openai',
      authorization: 'Bearer x',
      prompt: 'hello there',
      status: 200,
    });
    await settle();
    expect(entries()).toEqual([
      expect.objectContaining({
        level: 'info',
        message: 'forwarded',
        component: 'proxy',
        status: 200,
      }),
    ]);
    expect(entries()[0]).not.toHaveProperty('authorization');
    expect(entries()[0]).not.toHaveProperty('prompt');
  });

  it('masks known secret values in the message and every string field', async () => {
    const key = ['sk', 'proj', randomBytes(16).toString('hex')].join('-');
    const other = randomBytes(12).toString('hex');
    const unregister = registerSecretSource(() => [other]);
    try {
      const { log, lines } = capture({ secretValues: () => [key] });
      log.error(`upstream rejected ${key}`, {
        error: `bad ${key}`,
        limitIds: [key, 'l1'],
        url: `/x?k=${other}`,
      });
      await settle();
      const text = lines.join('\n');
      expect(text).not.toContain(key);
      expect(text).not.toContain(other);
      expect(text).toContain('[REDACTED]');
    } finally {
      unregister();
    }
  });

  it('drops object values and cuts long strings', async () => {
    const { log, entries } = capture();
    log.warn('x', { reason: 'r'.repeat(5000), error: { message: 'm' } as unknown as string });
    await settle();
    const [entry] = entries();
    expect(String(entry!.reason).length).toBeLessThanOrEqual(1025);
    expect(entry).not.toHaveProperty('error');
  });

  it('honours the level', async () => {
    const { log, entries } = capture({ level: 'warn' });
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    await settle();
    expect(entries().map((e) => e.message)).toEqual(['shown']);
  });
});

describe('resolveLogLevel', () => {
  it('prefers the flag, then the environment, then info', () => {
    expect(resolveLogLevel('debug', 'error')).toBe('debug');
    expect(resolveLogLevel(undefined, 'WARN')).toBe('warn');
    expect(resolveLogLevel(undefined, undefined)).toBe('info');
  });
  it('refuses unknown levels', () => {
    expect(() => resolveLogLevel('verbose', undefined)).toThrow(/error, warn, info, debug/);
  });
});

describe('logAccess', () => {
  it('writes one metadata-only line per request', async () => {
    const { log, entries } = capture();
    logAccess(log, {
      method: 'POST',
      route: '/openai/v1/chat/completions',
      provider: 'openai',
      model: 'gpt-4o',
      status: 200,
      decision: 'redacted',
      inputTokens: 12,
      outputTokens: 3,
      costMicros: 45,
      durationMs: 12.34567,
      callerHash: 'ab12',
      dlpCounts: { email: 2 },
    });
    await settle();
    expect(entries()[0]).toMatchObject({
      message: 'request',
      event: 'access',
      route: '/openai/v1/chat/completions',
      caller: 'ab12',
      dlp: ['email=2'],
      durationMs: 12.346,
    });
  });
});

describe('logAccess with client-sent values', () => {
  it('records a model that is not a model name, or a message given as a code, as _OTHER', async () => {
    const { log, entries } = capture();
    logAccess(log, {
      method: 'POST',
      route: '/openai/v1/chat/completions',
      model: 'my ssn is 123-45-6789, what is yours?',
      status: 400,
      decision: 'refused',
      code: 'Invalid prompt: my ssn is 123-45-6789',
      durationMs: 1,
    });
    await settle();
    expect(entries()[0]).toMatchObject({ model: '_OTHER', code: '_OTHER' });
  });
});
