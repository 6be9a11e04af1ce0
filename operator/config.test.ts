import { describe, expect, it } from '@jest/globals';
import { parseOperatorSettings } from './config-file.js';
import { OperatorConfigError, parseOperatorConfig } from './config.js';

const tls = ['--tls-cert-file', '/tls/tls.crt', '--tls-key-file', '/tls/tls.key'];

describe('parseOperatorConfig', () => {
  it('fills defaults and takes the replica identity from the downward API', () => {
    const config = parseOperatorConfig(tls, { POD_NAME: 'op-0', POD_NAMESPACE: 'llmproxy' });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(config.leaderElection).toEqual({
      namespace: 'llmproxy',
      name: 'llmproxy-operator',
      identity: 'op-0',
    });
  });

  it('lists every bad field at once', () => {
    try {
      parseOperatorConfig(['--listen', 'nope', '--log-level', 'loud'], {});
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(OperatorConfigError);
      expect((err as OperatorConfigError).problems).toHaveLength(4);
    }
  });

  it('accepts an IPv6 listen address', () => {
    expect(parseOperatorConfig([...tls, '--listen', '[::]:9443'], {}).listen).toEqual({
      host: '::',
      port: 9443,
    });
  });

  it('runs as the chart runs it: --config gives ports, the Lease and the managed certificate', () => {
    const settings = parseOperatorSettings({
      operator: { namespace: 'llmproxy', serviceName: 'llmproxy-x', distributionPort: 18443 },
    });
    const config = parseOperatorConfig(
      ['--config', '/etc/llmproxy/config.yaml'],
      { POD_NAME: 'op-1' },
      () => settings,
    );
    expect(config.settings).toBe(settings);
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 18443 });
    expect(config.healthListen).toEqual({ host: '0.0.0.0', port: 8081 });
    expect(config.metricsListen).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(config.tlsCertFile).toBeUndefined();
    expect(config.leaderElection).toEqual({
      namespace: 'llmproxy',
      name: 'llmproxy-x',
      identity: 'op-1',
    });
  });

  it('reports a bad settings file with the flags', () => {
    expect(() => parseOperatorConfig(['--config', '/nope.yaml', '--cert-ip-san', 'x'], {})).toThrow(
      /cannot read[\s\S]*--cert-ip-san/,
    );
  });
});
