// List+watch with a local cache, made robust against what goes wrong with long watches:
// 410 Gone (relist), a connection that silently stops delivering (watchdog), API server
// outages (jittered backoff), and drift (periodic relist). Subscribers get a sync callback
// with the whole cache after every (re)connect so controllers can reconcile from it.
import { errorMessage } from '../../sidecar/control/protocol.js';
import { backoffDelay, type BackoffOptions } from '../../sidecar/control/backoff.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { KubeApiError, isGone, type KubeClient, type WatchEvent } from './client.js';
import { objectKey, type ResourceKind } from './resources.js';
import type { KubeObject } from './types.js';

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** A watch that delivers nothing (not even a bookmark) for this long is restarted. */
  watchdogMs?: number;
  /** Relist this often even when nothing failed, to heal any drift; 0 disables. */
  relistIntervalMs?: number;
  backoff?: BackoffOptions;
  /** The server closes each watch after about this long; we then resume from the last version. */
  watchTimeoutSeconds?: number;
  /**
   * Start by watching from this resourceVersion instead of listing (a known checkpoint).
   * When the server no longer has it (410 Gone), the informer lists as usual.
   */
  resumeFrom?: string;
  log?: Logger;
  random?: () => number;
}

export type ChangeType = 'added' | 'updated' | 'deleted';

export interface Change<T> {
  type: ChangeType;
  object: T;
  previous?: T;
}

export interface InformerStats {
  lists: number;
  watches: number;
  gone: number;
  watchdogRestarts: number;
  errors: number;
  syncs: number;
}

/**
 * The changes that turn cache `before` into `after` (pure): what a relist must report so
 * subscribers see deletions and updates they missed while the watch was down.
 */
export function diffSnapshots<T extends KubeObject>(
  before: ReadonlyMap<string, T>,
  after: ReadonlyMap<string, T>,
): Change<T>[] {
  const changes: Change<T>[] = [];
  for (const [key, object] of after) {
    const previous = before.get(key);
    if (!previous) changes.push({ type: 'added', object });
    else if (previous.metadata?.resourceVersion !== object.metadata?.resourceVersion) {
      changes.push({ type: 'updated', object, previous });
    }
  }
  for (const [key, object] of before) {
    if (!after.has(key)) changes.push({ type: 'deleted', object });
  }
  return changes;
}

export type Step = 'relist' | 'resume' | 'backoff-resume' | 'backoff-relist';

/**
 * What the watch loop does after a watch ends (pure). A server-side close resumes from the
 * last resourceVersion; 410 Gone relists at once; any other failure backs off, then resumes
 * (or lists, when no complete list is held yet).
 */
export function nextStep(
  outcome: 'closed' | 'stale' | 'relist-due' | { error: unknown },
  haveList: boolean,
): Step {
  if (outcome === 'relist-due') return 'relist';
  if (outcome === 'closed' || outcome === 'stale') return 'resume';
  if (isGone(outcome.error)) return 'relist';
  return haveList ? 'backoff-resume' : 'backoff-relist';
}

type Listener<T> = { onChange?: (change: Change<T>) => void; onSync?: (objects: T[]) => void };

class WatchEnded extends Error {
  constructor(readonly kind: 'stale' | 'relist-due' | 'stopped') {
    super(`watch ended: ${kind}`);
  }
}

export class Informer<T extends KubeObject> {
  private cache = new Map<string, T>();
  private resourceVersion = '';
  private listeners: Listener<T>[] = [];
  private stopped = false;
  private running?: Promise<void>;
  private current?: AbortController;
  private lastListAt = 0;
  private firstSync?: { resolve: () => void; reject: (err: unknown) => void };
  private hasSynced = false;
  private readonly wakers = new Set<() => void>();
  private readonly counters: InformerStats = {
    lists: 0,
    watches: 0,
    gone: 0,
    watchdogRestarts: 0,
    errors: 0,
    syncs: 0,
  };

  constructor(
    private readonly client: KubeClient,
    private readonly kind: ResourceKind<T>,
    private readonly options: InformerOptions = {},
  ) {}

  /** Subscribes; returns the unsubscribe function. */
  subscribe(listener: Listener<T>): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Starts the loop; resolves once the cache holds a complete list (or the resumed watch runs). */
  start(): Promise<void> {
    if (this.running) throw new Error('informer already started');
    const synced = new Promise<void>((resolve, reject) => {
      this.firstSync = { resolve, reject };
    });
    this.running = this.loop();
    return synced;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort(new WatchEnded('stopped'));
    for (const wake of [...this.wakers]) wake();
    this.firstSync?.reject(new Error('informer stopped before its first sync'));
    await this.running;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  synced(): boolean {
    return this.hasSynced;
  }

  stats(): InformerStats {
    return { ...this.counters };
  }

  private get log() {
    return this.options.log;
  }

  private async loop(): Promise<void> {
    let haveList = false;
    let step: Step = 'relist';
    let attempt = 0;
    let recovering = false;
    if (this.options.resumeFrom) {
      this.resourceVersion = this.options.resumeFrom;
      this.lastListAt = Date.now();
      haveList = true;
      step = 'resume';
      recovering = true;
    }
    while (!this.stopped) {
      try {
        if (step === 'backoff-resume' || step === 'backoff-relist') {
          const delayMs = backoffDelay(attempt++, this.backoff(), this.random());
          this.log?.warn('watch failed; retrying', { reason: this.kind.plural, attempt, delayMs });
          await this.sleep(delayMs);
          if (this.stopped) break;
          recovering = true;
        }
        if (step === 'relist' || step === 'backoff-relist') {
          await this.relist();
          haveList = true;
          recovering = false;
        }
        const outcome = await this.watchOnce(() => {
          // The watch is established: a reconnect after trouble is a sync point too.
          attempt = 0;
          if (recovering) this.emitSync();
          recovering = false;
        });
        if (outcome === 'stale') this.counters.watchdogRestarts++;
        step = nextStep(outcome, haveList);
      } catch (error) {
        if (this.stopped) break;
        this.counters.errors++;
        if (isGone(error)) {
          this.counters.gone++;
          haveList = false;
          this.log?.info('watch resource version expired; relisting', { reason: this.kind.plural });
        } else {
          this.log?.warn('watch error', { reason: this.kind.plural, error: errorMessage(error) });
        }
        step = nextStep({ error }, haveList);
        // Repeated 410s (or a relist that keeps failing) still back off.
        if (step === 'relist' && attempt > 0) step = 'backoff-relist';
        if (step === 'relist') attempt++;
      }
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.client.list(this.kind, this.options);
    this.counters.lists++;
    this.lastListAt = Date.now();
    const next = new Map(items.map((item) => [objectKey(item), item] as const));
    const changes = diffSnapshots(this.cache, next);
    this.cache = next;
    this.resourceVersion = resourceVersion;
    for (const change of changes) this.emitChange(change);
    this.emitSync();
  }

  /** Runs one watch until the server closes it, the watchdog fires, or a relist is due. */
  private async watchOnce(onEstablished: () => void): Promise<'closed' | 'stale' | 'relist-due'> {
    const controller = new AbortController();
    this.current = controller;
    this.counters.watches++;
    let lastSeen = Date.now();
    let established = false;
    const watchdogMs = this.options.watchdogMs ?? 90_000;
    const relistMs = this.options.relistIntervalMs ?? 10 * 60_000;
    const timer = setInterval(
      () => {
        const now = Date.now();
        if (now - lastSeen > watchdogMs) controller.abort(new WatchEnded('stale'));
        else if (relistMs > 0 && now - this.lastListAt > relistMs) {
          controller.abort(new WatchEnded('relist-due'));
        }
      },
      Math.max(50, Math.min(watchdogMs, relistMs || watchdogMs) / 4),
    );
    try {
      await this.client.watch(
        this.kind,
        {
          namespace: this.options.namespace,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          resourceVersion: this.resourceVersion,
          timeoutSeconds: this.watchTimeout(),
        },
        (event) => {
          lastSeen = Date.now();
          if (!established) {
            established = true;
            onEstablished();
          }
          this.apply(event);
        },
        controller.signal,
      );
      if (!established) onEstablished();
      return 'closed';
    } catch (err) {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof WatchEnded) {
        if (reason.kind === 'stopped') throw reason;
        if (reason.kind === 'stale') {
          this.log?.warn('watch silent too long; restarting', { reason: this.kind.plural });
        }
        return reason.kind;
      }
      throw err;
    } finally {
      clearInterval(timer);
      this.current = undefined;
    }
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; reason?: string; message?: string };
      throw new KubeApiError(status.code ?? 500, status.reason ?? 'Unknown', status.message ?? '');
    }
    const version = event.object.metadata?.resourceVersion;
    if (version) this.resourceVersion = version;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(event.object);
    const previous = this.cache.get(key);
    if (event.type === 'DELETED') {
      this.cache.delete(key);
      this.emitChange({ type: 'deleted', object: event.object });
      return;
    }
    this.cache.set(key, event.object);
    this.emitChange(
      previous
        ? { type: 'updated', object: event.object, previous }
        : { type: 'added', object: event.object },
    );
  }

  private emitChange(change: Change<T>): void {
    for (const listener of this.listeners) {
      try {
        listener.onChange?.(change);
      } catch (err) {
        this.log?.error('informer subscriber failed', { reason: String(err) });
      }
    }
  }

  private emitSync(): void {
    this.counters.syncs++;
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.firstSync?.resolve();
    }
    const objects = [...this.cache.values()];
    for (const listener of this.listeners) {
      try {
        listener.onSync?.(objects);
      } catch (err) {
        this.log?.error('informer subscriber failed', { reason: String(err) });
      }
    }
  }

  private backoff(): BackoffOptions {
    return this.options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  }

  private random(): number {
    return (this.options.random ?? Math.random)();
  }

  /** Spread server-side watch timeouts so many informers do not reconnect in lockstep. */
  private watchTimeout(): number {
    const base = this.options.watchTimeoutSeconds ?? 300;
    return Math.max(1, Math.round(base * (0.8 + 0.4 * this.random())));
  }

  /** A delay that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = () => done();
      this.wakers.add(wake);
      const wakers = this.wakers;
      function done() {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      }
    });
  }
}
