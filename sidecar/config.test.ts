import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseConfig } from './config.js';

describe('parseConfig', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig(['--policy-file', 'p.yaml'], {});
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 8787 },
      adminListen: { port: 15020 },
      maxBodyBytes: 1_048_576,
      logLevel: 'info',
    });
  });

  it('reads labels and the log level from the environment when flags are absent', () => {
    const config = parseConfig(['--policy-file', 'p'], {
      LLMPROXY_POD_LABELS: 'app=demo,tier=web',
      LLMPROXY_LOG_LEVEL: 'debug',
    });
    expect(config.pod.labels).toEqual({ app: 'demo', tier: 'web' });
    expect(config.logLevel).toBe('debug');
  });

  it('reports every bad field at once', () => {
    let problems: string[] = [];
    try {
      parseConfig(
        [
          '--listen',
          '0.0.0.0:8787',
          '--max-body-bytes',
          '12',
          '--log-level',
          'loud',
          '--pod-labels',
          'no-equals',
        ],
        {},
      );
    } catch (error) {
      problems = (error as ConfigError).problems;
    }
    expect(problems).toEqual([
      expect.stringContaining('--listen: the application endpoint speaks plain HTTP'),
      expect.stringContaining('--log-level'),
      expect.stringContaining('--pod-labels'),
      expect.stringContaining('--max-body-bytes'),
      expect.stringContaining('--policy-file or --operator-url: one is required'),
    ]);
  });
});
