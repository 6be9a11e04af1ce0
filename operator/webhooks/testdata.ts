// Shared test fixtures of the webhook tests: a configuration and a context.
import { parseOperatorConfig, type OperatorConfig } from '../config.js';
import type { InjectionContext } from './inject.js';

export const TEST_CA_BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

export function testConfig(overrides: Record<string, unknown> = {}): OperatorConfig {
  return parseOperatorConfig(overrides);
}

export function testContext(partial: Partial<InjectionContext> = {}): InjectionContext {
  return {
    config: testConfig(),
    namespaceLabels: {},
    namespace: 'team-a',
    caBundle: TEST_CA_BUNDLE,
    nativeSidecars: true,
    version: '0.1.0',
    ...partial,
  };
}
