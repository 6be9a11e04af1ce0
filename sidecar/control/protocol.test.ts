import { describe, expect, it } from '@jest/globals';
import { backoffDelay } from './backoff.js';
import {
  decodeAck,
  decodeServerMessage,
  encodeMessage,
  LineDecoder,
  ProtocolError,
} from './protocol.js';

describe('LineDecoder', () => {
  it('reassembles lines split across chunks, including a multi-byte character', () => {
    const decoder = new LineDecoder(1024);
    const bytes = Buffer.from('{"a":"é"}\n{"b":1}\n');
    const split = bytes.indexOf(0xa9); // second byte of é
    expect(decoder.push(bytes.subarray(0, split))).toEqual([]);
    expect(decoder.push(bytes.subarray(split))).toEqual(['{"a":"é"}', '{"b":1}']);
  });

  it('refuses a line longer than the limit instead of buffering it', () => {
    const decoder = new LineDecoder(8);
    decoder.push(Buffer.from('12345'));
    expect(() => decoder.push(Buffer.from('6789'))).toThrow(ProtocolError);
  });

  it('skips blank lines', () => {
    expect(new LineDecoder().push(Buffer.from('\n\n{"x":1}\n'))).toEqual(['{"x":1}']);
  });
});

describe('stream messages', () => {
  it('round-trips a heartbeat and a hello', () => {
    const line = encodeMessage({ type: 'hello', heartbeatMs: 1000, pod: 'p' });
    expect(line.endsWith('\n')).toBe(true);
    expect(decodeServerMessage(line.trim())).toEqual({
      type: 'hello',
      heartbeatMs: 1000,
      pod: 'p',
    });
    expect(decodeServerMessage(encodeMessage({ type: 'heartbeat' }).trim())).toEqual({
      type: 'heartbeat',
    });
  });

  it('ignores message types it does not know, for forward compatibility', () => {
    expect(decodeServerMessage('{"type":"future","x":1}')).toBeUndefined();
  });

  it('rejects malformed lines with a protocol error', () => {
    expect(() => decodeServerMessage('not json')).toThrow(ProtocolError);
    expect(() => decodeServerMessage('[1]')).toThrow(ProtocolError);
    expect(() => decodeServerMessage('{"type":"policy"}')).toThrow(ProtocolError);
  });

  it('round-trips a keys message', () => {
    const value = ['sk', 'unit', Math.random().toString(36).slice(2)].join('-');
    const keys = [{ provider: 'openai', secretId: 'llm/openai', version: 'v1', value }];
    expect(decodeServerMessage(encodeMessage({ type: 'keys', keys }).trim())).toEqual({
      type: 'keys',
      keys,
    });
    expect(decodeServerMessage('{"type":"keys","keys":[]}')).toEqual({ type: 'keys', keys: [] });
  });

  it('refuses a malformed keys message without quoting any of it', () => {
    const value = ['sk', 'unit', Math.random().toString(36).slice(2)].join('-');
    const bad = [
      { keys: 'x' },
      { keys: [{ provider: 'openai', secretId: 's', version: 'v' }] },
      { keys: [{ provider: 'Not A Name', secretId: 's', version: 'v', value }] },
      { keys: [{ provider: 'openai', secretId: '', version: 'v', value }] },
      {
        keys: [
          { provider: 'openai', secretId: 's', version: 'v', value },
          { provider: 'openai', secretId: 's', version: 'v', value },
        ],
      },
    ];
    for (const body of bad) {
      const line = JSON.stringify({ type: 'keys', ...body });
      const error = (() => {
        try {
          decodeServerMessage(line);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as Error).message).not.toContain(value);
    }
  });
});

describe('decodeAck', () => {
  it('accepts a well-formed ack and truncates a long error', () => {
    const ack = decodeAck({ version: 'sha256:00', ok: false, error: 'x'.repeat(5000) });
    expect(ack?.ok).toBe(false);
    expect(ack?.error?.length).toBeLessThanOrEqual(1024);
  });

  it('refuses acks with missing or mistyped fields', () => {
    expect(decodeAck({ ok: true })).toBeUndefined();
    expect(decodeAck({ version: 'v', ok: 'yes' })).toBeUndefined();
    expect(decodeAck({ version: 'v', ok: true, error: 5 })).toBeUndefined();
    expect(decodeAck('v')).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('grows exponentially, stays within [ceiling/2, ceiling], and caps', () => {
    const opts = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, opts, 0)).toBe(50);
    expect(backoffDelay(0, opts, 1)).toBe(100);
    expect(backoffDelay(3, opts, 0.5)).toBe(600);
    expect(backoffDelay(50, opts, 1)).toBe(1000);
  });
});
