// Shared test fixtures of the webhook tests: a configuration and a context.
import { parseOperatorSettings, type OperatorSettings } from '../config-file.js';
import type { InjectionContext } from './inject.js';

export const TEST_CA_BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

export function testSettings(overrides: Record<string, unknown> = {}): OperatorSettings {
  return parseOperatorSettings(overrides);
}

export function testContext(partial: Partial<InjectionContext> = {}): InjectionContext {
  return {
    config: testSettings(),
    namespaceLabels: {},
    namespace: 'team-a',
    caBundle: TEST_CA_BUNDLE,
    nativeSidecars: true,
    version: '0.1.0',
    ...partial,
  };
}
