import { describe, expect, it } from '@jest/globals';
import { Slots } from './concurrency.js';

describe('concurrency slots', () => {
  it('hands out free slots at once and wakes waiters first in, first out', async () => {
    const slots = new Slots({ maxConcurrent: 1, maxQueued: 5, maxWaitMs: 5_000 });
    const first = await slots.acquire();
    if (!first.ok) throw new Error('expected a slot');
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) =>
      slots.acquire().then((r) => {
        order.push(n);
        return r;
      }),
    );
    expect(slots.queued).toBe(3);
    first.release();
    for (const w of waiting) {
      const r = await w;
      if (r.ok) r.release();
    }
    expect(order).toEqual([1, 2, 3]);
    expect(slots.inUse).toBe(0);
  });

  it('lets more requests in at once when a policy push raises the limit', async () => {
    const slots = new Slots({ maxConcurrent: 1, maxQueued: 5, maxWaitMs: 5_000 });
    await slots.acquire();
    const waiting = slots.acquire();
    slots.update({ maxConcurrent: 2, maxQueued: 5, maxWaitMs: 5_000 });
    expect((await waiting).ok).toBe(true);
  });

  it('sheds waiters on close instead of leaving them hanging', async () => {
    const slots = new Slots({ maxConcurrent: 1, maxQueued: 5, maxWaitMs: 60_000 });
    await slots.acquire();
    const waiting = slots.acquire();
    slots.close();
    expect(await waiting).toEqual({ ok: false, reason: 'queue_full' });
  });
});
