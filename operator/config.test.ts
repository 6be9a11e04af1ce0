import { describe, expect, it } from '@jest/globals';
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
});
