import { describe, expect, it } from '@jest/globals';
import { decide, leaseSpecFor, observe, releasedSpec } from './lease.js';

const held = (holder: string, renewTime = 't1') => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  renewTime,
  leaseTransitions: 1,
});

describe('leader election decisions', () => {
  it('takes a lease nobody holds', () => {
    expect(decide(observe(undefined, undefined, 0), 'me', 0)).toBe('acquire');
    expect(decide(observe(undefined, releasedSpec(held('other'), 't'), 0), 'me', 0)).toBe(
      'acquire',
    );
  });

  it('renews its own lease', () => {
    expect(decide(observe(undefined, held('me'), 0), 'me', 0)).toBe('renew');
  });

  it('waits while another holder keeps renewing, judged on its own clock', () => {
    let seen = observe(undefined, held('other', 't1'), 0);
    expect(decide(seen, 'me', 14_000)).toBe('wait');
    seen = observe(seen, held('other', 't2'), 14_000);
    expect(decide(seen, 'me', 20_000)).toBe('wait');
    expect(decide(seen, 'me', 29_000)).toBe('acquire');
  });

  it('does not restart the expiry clock when the record is unchanged', () => {
    const first = observe(undefined, held('other'), 0);
    expect(observe(first, held('other'), 10_000)).toBe(first);
  });

  it('counts a transition when the holder changes, not when it renews', () => {
    const mine = leaseSpecFor(held('other'), 'me', 15, 'now');
    expect(mine.leaseTransitions).toBe(2);
    expect(leaseSpecFor(mine, 'me', 15, 'later')).toMatchObject({
      leaseTransitions: 2,
      acquireTime: 'now',
      renewTime: 'later',
    });
  });
});
