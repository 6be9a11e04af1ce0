// A keyed work queue: each key is processed by at most one worker at a time, adding a key
// that is already waiting is a no-op (de-duplication), a key added while it is being
// processed runs once more afterwards, and failed keys come back with per-key exponential
// backoff. The core is pure (time is a parameter); startWorkers is the thin shell with timers.
import { errorMessage } from '../../sidecar/control/protocol.js';
import type { Logger } from '../../sidecar/telemetry/log.js';

export interface RetryOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

const DEFAULT_RETRY: RetryOptions = { baseDelayMs: 5, maxDelayMs: 5 * 60_000 };

/** The delay before the n-th retry (1-based) of a key: base·2^(n-1), capped. */
export function retryDelay(failures: number, options: RetryOptions = DEFAULT_RETRY): number {
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(failures - 1, 40));
}

export class WorkQueue<K extends string = string> {
  private readonly ready: K[] = [];
  private readonly waiting = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly dirty = new Set<K>();
  private readonly delayed = new Map<K, number>();
  private readonly failureCounts = new Map<K, number>();

  constructor(private readonly retry: RetryOptions = DEFAULT_RETRY) {}

  /** Queues a key now; a no-op when it is already waiting. */
  add(key: K): void {
    this.delayed.delete(key);
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.ready.push(key);
  }

  /** Queues a key once `delayMs` has passed; an earlier pending time for it wins. */
  addAfter(key: K, delayMs: number, now: number): void {
    if (delayMs <= 0) return this.add(key);
    if (this.waiting.has(key)) return;
    const due = now + delayMs;
    const existing = this.delayed.get(key);
    if (existing === undefined || due < existing) this.delayed.set(key, due);
  }

  /** Takes the next ready key and marks it in progress, or undefined when none is ready. */
  next(now: number): K | undefined {
    this.promote(now);
    const key = this.ready.shift();
    if (key === undefined) return undefined;
    this.waiting.delete(key);
    this.processing.add(key);
    return key;
  }

  /** Marks a key finished; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Records a failure and schedules the key again after its backoff; returns the delay. */
  fail(key: K, now: number): number {
    const failures = (this.failureCounts.get(key) ?? 0) + 1;
    this.failureCounts.set(key, failures);
    const delay = retryDelay(failures, this.retry);
    this.addAfter(key, delay, now);
    return delay;
  }

  /** Clears a key's failure history after it succeeded. */
  forget(key: K): void {
    this.failureCounts.delete(key);
  }

  failures(key: K): number {
    return this.failureCounts.get(key) ?? 0;
  }

  /** Milliseconds until some key becomes ready: 0 if one is, undefined if none is scheduled. */
  nextReadyIn(now: number): number | undefined {
    if (this.ready.length > 0) return 0;
    let soonest: number | undefined;
    for (const due of this.delayed.values()) {
      if (soonest === undefined || due < soonest) soonest = due;
    }
    return soonest === undefined ? undefined : Math.max(0, soonest - now);
  }

  /** Keys waiting (ready or delayed) plus those in progress. */
  size(): { ready: number; delayed: number; processing: number } {
    return {
      ready: this.ready.length,
      delayed: this.delayed.size,
      processing: this.processing.size,
    };
  }

  private promote(now: number): void {
    for (const [key, due] of this.delayed) {
      if (due <= now) this.add(key);
    }
  }
}

export interface Workers<K extends string> {
  enqueue(key: K): void;
  enqueueAfter(key: K, delayMs: number): void;
  /** Stops taking keys and waits for those in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `handle` for queued keys with bounded concurrency. A thrown error retries the key
 * with backoff; success forgets its failures.
 */
export function startWorkers<K extends string>(
  queue: WorkQueue<K>,
  handle: (key: K) => Promise<void>,
  options: { concurrency?: number; log?: Logger; now?: () => number } = {},
): Workers<K> {
  const concurrency = options.concurrency ?? 4;
  const now = options.now ?? Date.now;
  const inFlight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const pump = (): void => {
    if (stopped) return;
    while (inFlight.size < concurrency) {
      const key = queue.next(now());
      if (key === undefined) break;
      const run = runOne(key).finally(() => {
        inFlight.delete(run);
        pump();
      });
      inFlight.add(run);
    }
    schedule();
  };

  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const wait = queue.nextReadyIn(now());
    if (wait !== undefined && wait > 0) timer = setTimeout(pump, wait);
  };

  const runOne = async (key: K): Promise<void> => {
    try {
      await handle(key);
      queue.forget(key);
    } catch (err) {
      const delayMs = queue.fail(key, now());
      options.log?.warn('reconcile failed; will retry', {
        reason: errorMessage(err, 200),
        attempt: queue.failures(key),
        delayMs,
      });
    } finally {
      queue.done(key);
    }
  };

  return {
    enqueue(key) {
      queue.add(key);
      pump();
    },
    enqueueAfter(key, delayMs) {
      queue.addAfter(key, delayMs, now());
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await Promise.all(inFlight);
    },
  };
}
