import { describe, expect, it } from '@jest/globals';
import type { LogFields, Logger } from '../telemetry/log.js';
import { createLogUsageSink } from './sink.js';

describe('log usage sink', () => {
  it('logs one line of metadata per record', () => {
    const lines: LogFields[] = [];
    const log: Logger = {
      error: () => {},
      warn: () => {},
      debug: () => {},
      info: (_m, f) => lines.push(f ?? {}),
    };
    createLogUsageSink(log).record({
      provider: 'openai',
      model: 'gpt-4o',
      usage: { inputTokens: 10, outputTokens: 2, estimated: false },
      costMicros: null,
      limitIds: ['a'],
      caller: 'hmac:abc',
      status: 200,
      aborted: false,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      event: 'usage',
      inputTokens: 10,
      costMicros: null,
      limitIds: ['a'],
    });
  });
});
