// Concurrency slots per limit: a bounded FIFO queue and a bounded wait, never an endless one.
//
// Not bottleneck: its local datastore yields the event loop with setTimeout(0) several times per job,
// which measured 3-5 ms added to every request start (the sidecar's latency budget is 0.3 ms).
// This semaphore hands out a free slot synchronously and wakes waiters in order.

export type SlotResult =
  { ok: true; release: () => void } | { ok: false; reason: 'queue_full' | 'timeout' };

export interface SlotOptions {
  maxConcurrent: number;
  /** Requests that may wait for a slot; one more is shed at once. */
  maxQueued: number;
  /** How long a request may wait for a slot before it is shed. */
  maxWaitMs: number;
}

interface Waiter {
  grant: (result: SlotResult) => void;
  timer: NodeJS.Timeout;
}

export class Slots {
  private running = 0;
  private readonly waiters = new Set<Waiter>(); // insertion-ordered: FIFO
  private options: SlotOptions;

  constructor(options: SlotOptions) {
    this.options = { ...options };
  }

  update(options: SlotOptions): void {
    this.options = { ...options };
    this.wake();
  }

  get inUse(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiters.size;
  }

  acquire(): Promise<SlotResult> {
    if (this.running < this.options.maxConcurrent && this.waiters.size === 0) {
      return Promise.resolve(this.grantSlot());
    }
    if (this.waiters.size >= this.options.maxQueued || this.options.maxWaitMs <= 0) {
      return Promise.resolve({ ok: false, reason: 'queue_full' });
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve({ ok: false, reason: 'timeout' });
        }, this.options.maxWaitMs),
      };
      waiter.timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** Sheds every waiter (used on shutdown). */
  close(): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.grant({ ok: false, reason: 'queue_full' });
    }
    this.waiters.clear();
  }

  private grantSlot(): SlotResult {
    this.running += 1;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.running -= 1;
        this.wake();
      },
    };
  }

  private wake(): void {
    for (const waiter of this.waiters) {
      if (this.running >= this.options.maxConcurrent) return;
      this.waiters.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.grant(this.grantSlot());
    }
  }
}
