import { describe, expect, it } from '@jest/globals';
import { nackEvent } from './delivery-events.js';

const pod = { namespace: 'ns', podName: 'p', podUid: 'u' };

describe('nackEvent', () => {
  it('records a warning on the pod for a rejected version', () => {
    const event = nackEvent(pod, { version: 'sha256:ab', ok: false, error: '/providers: bad' });
    expect(event).toMatchObject({
      type: 'Warning',
      reason: 'PolicyRejected',
      regarding: { kind: 'Pod', name: 'p', uid: 'u', namespace: 'ns' },
    });
    expect(event?.note).toContain('sha256:ab');
  });

  it('records nothing for an ack', () => {
    expect(nackEvent(pod, { version: 'v', ok: true })).toBeUndefined();
  });
});
