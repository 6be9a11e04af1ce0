import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  OperatorSettingsError,
  loadOperatorSettings,
  parseOperatorSettings,
} from './config-file.js';

const CHART_SHAPE = `
operator:
  namespace: llmproxy-system
  serviceName: llmproxy-operator
  distributionPort: 8443
  webhookPort: 9443
  certSecretName: llmproxy-operator-tls
  webhookConfigurationName: llmproxy
  certManager: false
sidecar:
  image: ghcr.io/llmproxy/llmproxy:0.1.0
  imagePullPolicy: IfNotPresent
  port: 8787
  adminPort: 15020
  probePort: 15021
  resources: { requests: { cpu: 50m, memory: 64Mi }, limits: { memory: 128Mi } }
  logLevel: info
aws: { region: us-east-1, allowedRegions: [us-east-1] }
redis: { url: "" }
`;

function problemsOf(document: unknown): string[] {
  try {
    parseOperatorSettings(document);
    return [];
  } catch (err) {
    if (err instanceof OperatorSettingsError) return err.problems;
    throw err;
  }
}

describe('operator configuration', () => {
  it('reads the file the chart renders', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'llmproxy-config-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, CHART_SHAPE);
    const config = loadOperatorSettings(file);
    expect(config.operator.webhookPort).toBe(9443);
    expect(config.sidecar.resources.limits).toEqual({ memory: '128Mi' });
    expect(config.aws.allowedRegions).toEqual(['us-east-1']);
    expect(config.sidecar.nativeSidecars).toBe('auto');
  });

  it('fills every default from an empty document', () => {
    const config = parseOperatorSettings(undefined);
    expect(config.operator.serviceName).toBe('llmproxy-operator');
    expect(config.sidecar.probePort).toBe(15021);
    expect(config.redis.url).toBe('');
  });

  it('names each bad field', () => {
    const problems = problemsOf({
      operator: { webhookPort: 70000, namespce: 'x' },
      sidecar: { resources: { requests: { cpu: 'lots' } } },
      aws: { allowedRegions: ['moon-1'] },
    });
    expect(problems.join('\n')).toMatch(/operator\.webhookPort/);
    expect(problems.join('\n')).toMatch(/operator\.namespce/);
    expect(problems.join('\n')).toMatch(/sidecar\.resources\.requests\.cpu/);
    expect(problems.join('\n')).toMatch(/aws\.allowedRegions\.0/);
  });

  it('refuses clashing ports and a home region outside the allowed ones', () => {
    const problems = problemsOf({
      sidecar: { port: 15020 },
      aws: { region: 'eu-west-1', allowedRegions: ['us-east-1'] },
    });
    expect(problems).toEqual([
      'sidecar: port, adminPort and probePort must all differ',
      'aws.allowedRegions: must include aws.region (eu-west-1)',
    ]);
  });

  it('reports unreadable and malformed files without throwing anything else', () => {
    expect(() => loadOperatorSettings('/nonexistent/config.yaml')).toThrow(OperatorSettingsError);
    const dir = mkdtempSync(path.join(tmpdir(), 'llmproxy-config-'));
    writeFileSync(path.join(dir, 'bad.yaml'), 'operator: [unclosed');
    expect(() => loadOperatorSettings(path.join(dir, 'bad.yaml'))).toThrow(/not valid YAML/);
  });
});
