import { describe, expect, it } from '@jest/globals';
import { retryDelay, startWorkers, WorkQueue } from './queue.js';

describe('WorkQueue', () => {
  it('hands out a key added twice only once', () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.next(0)).toBe('a');
    expect(q.next(0)).toBe('b');
    expect(q.next(0)).toBeUndefined();
  });

  it('never gives the same key to two workers at once, and reruns it if added meanwhile', () => {
    const q = new WorkQueue();
    q.add('a');
    expect(q.next(0)).toBe('a');
    q.add('a');
    expect(q.next(0)).toBeUndefined();
    q.done('a');
    expect(q.next(0)).toBe('a');
    q.done('a');
    expect(q.next(0)).toBeUndefined();
  });

  it('releases a delayed key only when its time has come', () => {
    const q = new WorkQueue();
    q.addAfter('a', 100, 1000);
    expect(q.next(1099)).toBeUndefined();
    expect(q.nextReadyIn(1050)).toBe(50);
    expect(q.next(1100)).toBe('a');
  });

  it('keeps the earlier of two delays for the same key, and an immediate add wins', () => {
    const q = new WorkQueue();
    q.addAfter('a', 500, 0);
    q.addAfter('a', 100, 0);
    expect(q.nextReadyIn(0)).toBe(100);
    q.add('a');
    expect(q.next(0)).toBe('a');
    q.done('a');
    expect(q.next(10_000)).toBeUndefined();
  });

  it('backs a failing key off exponentially up to the cap, and forgets after success', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      q.add('a');
      q.next(0);
      delays.push(q.fail('a', 0));
      q.done('a');
    }
    expect(delays).toEqual([10, 20, 40, 50, 50]);
    q.forget('a');
    expect(q.failures('a')).toBe(0);
  });

  it('retries a key that failed while it was re-added, without running it twice at once', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    q.add('a');
    q.next(0);
    q.add('a');
    q.fail('a', 0);
    q.done('a');
    expect(q.next(0)).toBe('a');
    expect(q.next(0)).toBeUndefined();
  });

  it('computes the retry delay without overflowing for huge failure counts', () => {
    expect(retryDelay(10_000, { baseDelayMs: 5, maxDelayMs: 1000 })).toBe(1000);
  });
});

describe('startWorkers', () => {
  it('processes keys, retries a failure, and bounds concurrency', async () => {
    const q = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 20 });
    const seen: string[] = [];
    let active = 0;
    let maxActive = 0;
    let failOnce = true;
    const allDone = new Promise<void>((resolve) => {
      const workers = startWorkers(
        q,
        async (key) => {
          active++;
          maxActive = Math.max(maxActive, active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
          seen.push(key);
          if (key === 'b' && failOnce) {
            failOnce = false;
            throw new Error('transient');
          }
          if (seen.length === 4) void workers.stop().then(resolve);
        },
        { concurrency: 2 },
      );
      for (const key of ['a', 'b', 'c']) workers.enqueue(key);
    });
    await allDone;
    expect(seen.sort()).toEqual(['a', 'b', 'b', 'c']);
    expect(maxActive).toBeLessThanOrEqual(2);
  });
});
