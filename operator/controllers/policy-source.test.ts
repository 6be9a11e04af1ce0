import { describe, expect, it } from '@jest/globals';
import type { Pod } from '../kube/index.js';
import { INJECTION_STATUS_ANNOTATION, holdsShare } from './policy-source.js';

const injected = (extra: Partial<Pod['metadata']> = {}, phase?: string): Pod => ({
  metadata: {
    name: 'p',
    namespace: 'ns',
    annotations: { [INJECTION_STATUS_ANNOTATION]: '{}' },
    ...extra,
  },
  ...(phase && { status: { phase } }),
});

describe('holdsShare', () => {
  it('counts injected pods, pending or running, toward the division of shared limits', () => {
    expect(holdsShare(injected())).toBe(true);
    expect(holdsShare(injected({}, 'Pending'))).toBe(true);
    expect(holdsShare(injected({}, 'Running'))).toBe(true);
  });

  it('leaves out pods not injected, terminating or finished, so their share goes to the others', () => {
    expect(holdsShare(undefined)).toBe(false);
    expect(holdsShare({ metadata: { name: 'p', namespace: 'ns' } })).toBe(false);
    expect(holdsShare(injected({ deletionTimestamp: '2025-01-01T00:00:00Z' }))).toBe(false);
    expect(holdsShare(injected({}, 'Succeeded'))).toBe(false);
    expect(holdsShare(injected({}, 'Failed'))).toBe(false);
  });
});
