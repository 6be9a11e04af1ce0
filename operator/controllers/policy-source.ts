// The operator's answer to "which policy should this pod enforce now": informers over
// LlmPolicies, LlmBudgets and Pods feed the (pure) compiler, and every change that can alter
// a pod's compiled policy is reported so the distribution server re-pushes it.
import type { LlmBudget, LlmPolicy } from '../../crds/v1alpha1/index.js';
import type { CompiledPolicy } from '../../sidecar/policy/compiled.js';
import {
  createCompilerIndex,
  type CompilerIndex,
  type PodIdentity,
} from '../../sidecar/policy/compiler/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import {
  Informer,
  LlmBudgets,
  LlmPolicies,
  Pods,
  sameJson,
  type Change,
  type InformerOptions,
  type KubeClient,
  type KubeObject,
  type Pod,
} from '../kube/index.js';

/** Who is asking (from the token), as the distribution server passes it. */
export interface RequestingPod {
  namespace: string;
  podName: string;
  podUid: string;
}

/** Set by the mutating webhook on every pod it injected; a pod without it did not opt in. */
export const INJECTION_STATUS_ANNOTATION = 'llmproxy.io/status';

/**
 * Whether a pod takes a share of its policies' `scope: shared` limits: injected, and neither
 * terminating nor finished, so a pod on its way out hands its share back to the others.
 */
export function holdsShare(pod: Pod | undefined): boolean {
  if (!pod?.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION]) return false;
  if (pod.metadata.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

function identityOf(pod: Pod, namespace: string): PodIdentity {
  return {
    namespace,
    labels: pod.metadata?.labels ?? {},
    serviceAccount: pod.spec?.serviceAccountName ?? 'default',
  };
}

export interface PolicySourceOptions {
  client: KubeClient;
  log: Logger;
  /** Watch one namespace only; all namespaces when absent. */
  namespace?: string;
  /** Only pods matching this selector are tracked (e.g. the sidecar-injected ones). */
  podLabelSelector?: string;
  /** Called (coalesced) with a predicate for the pods whose policy may have changed. */
  onChange(affects: (pod: RequestingPod) => boolean): void;
  informer?: Omit<InformerOptions, 'namespace' | 'labelSelector' | 'resumeFrom'>;
  /** Any change of a cached policy, budget or pod (status writes and deletions too). */
  onObjectsChanged?(): void;
  /**
   * Why an annotated pod must still not be served (its spec could hand the token to another
   * container); undefined when it may be. The annotation alone proves nothing: a pod can set it.
   */
  servingProblem?(pod: Pod): string | undefined;
  /** How long changes are collected before onChange fires. */
  coalesceMs?: number;
}

export class PolicySource {
  private readonly policies: Informer<KubeObject>;
  private readonly budgets: Informer<KubeObject>;
  private readonly pods: Informer<Pod>;
  private index?: CompilerIndex;
  /** Pods each policy selects among those holding a share; recounted after a change. */
  private podCounts?: Map<string, number>;
  private budgetCounts?: { at: number; counts: Map<string, number> };
  /** The counts the last flush announced: pods of policies whose count moved since get re-pushed. */
  private announcedCounts = new Map<string, number>();
  private readonly pendingNamespaces = new Set<string>();
  private readonly pendingPods = new Set<string>();
  private pendingAll = false;
  private timer?: NodeJS.Timeout;
  private readonly reportedUnservable = new Set<string>();

  constructor(private readonly options: PolicySourceOptions) {
    const base = { ...options.informer, namespace: options.namespace, log: options.log };
    this.policies = new Informer(options.client, LlmPolicies, base);
    this.budgets = new Informer(options.client, LlmBudgets, base);
    this.pods = new Informer(options.client, Pods, {
      ...base,
      labelSelector: options.podLabelSelector,
    });
    for (const informer of [this.policies, this.budgets]) {
      informer.subscribe({
        onChange: (change) => {
          this.policyChanged(change);
          this.objectsChanged();
        },
        onSync: () => {
          this.invalidateAll();
          this.objectsChanged();
        },
      });
    }
    this.pods.subscribe({
      onChange: (change) => {
        this.podChanged(change);
        this.objectsChanged();
      },
      onSync: () => {
        this.schedule(() => (this.pendingAll = true));
        this.objectsChanged();
      },
    });
  }

  /** Resolves once all three caches hold a complete list. */
  async start(): Promise<void> {
    await Promise.all([this.policies.start(), this.budgets.start(), this.pods.start()]);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all([this.policies.stop(), this.budgets.stop(), this.pods.stop()]);
  }

  synced(): boolean {
    return this.policies.synced() && this.budgets.synced() && this.pods.synced();
  }

  /**
   * The pod's policy, or undefined while it cannot be known for sure: caches not yet synced,
   * or the pod not (yet) seen with that uid. Undefined makes the sidecar keep what it has
   * (fail-static) or stay closed, never fall back to something broader.
   */
  policyFor(pod: RequestingPod): CompiledPolicy | undefined {
    if (this.injection(pod) !== 'allow') return undefined;
    const object = this.pods.get(pod.podName, pod.namespace);
    if (!object) return undefined;
    return this.compilerIndex().compileFor(identityOf(object, pod.namespace), this.counts());
  }

  /**
   * Whether the pod opted in: only pods the webhook injected (its status annotation) are served,
   * so a pod that projects an `llmproxy.io` token on its own gets nothing. `unknown` while the
   * caches are not synced or the pod (with that uid) is not in them yet.
   */
  injection(pod: RequestingPod): 'allow' | 'forbid' | 'unknown' {
    if (!this.synced()) return 'unknown';
    const object = this.pods.get(pod.podName, pod.namespace);
    if (!object || object.metadata?.uid !== pod.podUid) return 'unknown';
    if (!object.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION]) return 'forbid';
    const problem = this.options.servingProblem?.(object);
    if (problem) {
      this.reportUnservable(object, problem);
      return 'forbid';
    }
    return 'allow';
  }

  /** Once per pod and reason: a refused sidecar reconnects with backoff, and would repeat it. */
  private reportUnservable(pod: Pod, problem: string): void {
    const key = `${pod.metadata?.uid ?? ''}\0${problem}`;
    if (this.reportedUnservable.has(key)) return;
    if (this.reportedUnservable.size >= 1000) this.reportedUnservable.clear();
    this.reportedUnservable.add(key);
    this.options.log.warn('pod not served: its spec could expose its llmproxy.io token', {
      reason: problem,
      caller: pod.metadata?.name,
    });
  }

  /** Pods the webhook injected (from the cache), e.g. for the CA annotation refresh. */
  injectedPods(): Pod[] {
    return this.pods
      .list()
      .filter((p) => Boolean(p.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION]));
  }

  /** Names (`namespace/name`) of the policies selecting a pod, for status and explain. */
  policiesSelecting(pod: RequestingPod): string[] {
    const object = this.pods.get(pod.podName, pod.namespace);
    if (!object) return [];
    return this.compilerIndex().policiesFor(identityOf(object, pod.namespace));
  }

  /**
   * How many injected pods each budget (`namespace/name`) covers: its allowances are divided
   * among them. Recounted at most every two seconds; leases are renewed far less often.
   */
  budgetPodCounts(now = Date.now()): ReadonlyMap<string, number> {
    if (this.budgetCounts && now - this.budgetCounts.at < 2000) return this.budgetCounts.counts;
    const index = this.compilerIndex();
    const counts = new Map<string, number>();
    for (const pod of this.pods.list()) {
      const namespace = pod.metadata?.namespace;
      if (!holdsShare(pod) || !namespace) continue;
      for (const id of index.budgetsFor(identityOf(pod, namespace))) {
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    this.budgetCounts = { at: now, counts };
    return counts;
  }

  /** How many pods holding a share each policy selects: divides its shared limits among them. */
  counts(): ReadonlyMap<string, number> {
    this.podCounts ??= this.compilerIndex().countSelected(
      this.pods
        .list()
        .filter((pod) => holdsShare(pod) && pod.metadata?.namespace)
        .map((pod) => identityOf(pod, pod.metadata!.namespace!)),
    );
    return this.podCounts;
  }

  /** The cached LlmBudgets. */
  listBudgets(): KubeObject[] {
    return this.budgets.list();
  }

  /** The cached LlmPolicies. */
  listPolicies(): KubeObject[] {
    return this.policies.list();
  }

  private objectsChanged(): void {
    try {
      this.options.onObjectsChanged?.();
    } catch (err) {
      this.options.log.error('change hook failed', {
        reason: (err as { message?: string }).message ?? 'error',
      });
    }
  }

  private compilerIndex(): CompilerIndex {
    // Rebuilt lazily after a policy or budget change; the compiler makes this cheap.
    this.index ??= createCompilerIndex(
      this.policies.list() as unknown as LlmPolicy[],
      this.budgets.list() as unknown as LlmBudget[],
    );
    return this.index;
  }

  private policyChanged(change: Change<KubeObject>): void {
    // Status-only writes (our own) do not change what a pod may do.
    const before = change.previous as { spec?: unknown; metadata?: { labels?: unknown } };
    const after = change.object as { spec?: unknown };
    if (change.type === 'updated' && sameJson(before?.spec, after.spec)) return;
    this.index = undefined;
    this.podCounts = undefined;
    const namespace = change.object.metadata?.namespace;
    if (namespace) this.schedule(() => this.pendingNamespaces.add(namespace));
  }

  private invalidateAll(): void {
    this.index = undefined;
    this.podCounts = undefined;
    this.schedule(() => (this.pendingAll = true));
  }

  private podChanged(change: Change<Pod>): void {
    const uid = change.object.metadata?.uid;
    if (!uid) return;
    const before = change.type === 'added' ? undefined : (change.previous ?? change.object);
    const after = change.type === 'deleted' ? undefined : change.object;
    const selectionSame =
      before !== undefined &&
      after !== undefined &&
      sameJson(before.metadata?.labels, after.metadata?.labels) &&
      before.spec?.serviceAccountName === after.spec?.serviceAccountName;
    // A pod that starts or stops holding a share, or takes it to other policies, moves the
    // shares of every pod of those policies: they are recounted and compared at the flush.
    const sharesMoved =
      holdsShare(before) !== holdsShare(after) || (holdsShare(after) && !selectionSame);
    if (sharesMoved) this.podCounts = undefined;
    if (!after || selectionSame) {
      if (sharesMoved) this.schedule(() => {});
      return;
    }
    this.schedule(() => this.pendingPods.add(uid));
  }

  /** Policies with a shared limit whose pod count (so everyone's share) changed since the last flush. */
  private movedShares(): Set<string> {
    const now = this.counts();
    const before = this.announcedCounts;
    this.announcedCounts = new Map(now);
    const index = this.compilerIndex();
    const moved = new Set<string>();
    for (const origin of new Set([...before.keys(), ...now.keys()])) {
      // 0 and 1 pods both mean the whole limit.
      const changed = Math.max(1, before.get(origin) ?? 0) !== Math.max(1, now.get(origin) ?? 0);
      if (changed && index.dividesLimits(origin)) moved.add(origin);
    }
    return moved;
  }

  private schedule(mark: () => void): void {
    mark();
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.options.coalesceMs ?? 20);
  }

  private flush(): void {
    this.timer = undefined;
    const all = this.pendingAll;
    const namespaces = new Set(this.pendingNamespaces);
    const pods = new Set(this.pendingPods);
    this.pendingAll = false;
    this.pendingNamespaces.clear();
    this.pendingPods.clear();
    if (!this.synced()) return;
    const moved = this.movedShares();
    try {
      this.options.onChange(
        (pod) =>
          all ||
          namespaces.has(pod.namespace) ||
          pods.has(pod.podUid) ||
          (moved.size > 0 && this.policiesSelecting(pod).some((origin) => moved.has(origin))),
      );
    } catch (err) {
      this.options.log.error('policy change handler failed', {
        reason: (err as { message?: string }).message ?? 'error',
      });
    }
  }
}
