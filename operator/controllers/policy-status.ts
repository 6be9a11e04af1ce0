// LlmPolicy status, written by the leader alone through the status subresource: the Ready
// condition, observedGeneration and how many injected pods the policy selects. A write happens
// only when the status would change; the decision is a pure function of the cached objects.
import type { LlmPolicyStatus } from '../../crds/v1alpha1/index.js';
import { errorMessage } from '../../sidecar/control/protocol.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import {
  LlmPolicies,
  sameJson,
  type EventInput,
  type KubeClient,
  type KubeObject,
  type Pod,
} from '../kube/index.js';
import type { PolicySource } from './policy-source.js';

type Condition = NonNullable<LlmPolicyStatus['conditions']>[number];
type PolicyObject = KubeObject & { status?: LlmPolicyStatus };

/**
 * The status a policy should have (pure): Ready True while it selects at least one injected pod,
 * False with `NoPodsSelected` otherwise. Other status fields and conditions are kept; the Ready
 * condition keeps its lastTransitionTime while its status does not change.
 */
export function desiredPolicyStatus(
  policy: PolicyObject,
  selectedPods: number,
  now: string,
): LlmPolicyStatus {
  const generation = policy.metadata?.generation ?? 0;
  const current = policy.status ?? {};
  const previous = current.conditions?.find((c) => c.type === 'Ready');
  const ready: Condition =
    selectedPods > 0
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'Ready',
          message: `serving ${selectedPods} injected pod${selectedPods === 1 ? '' : 's'}`,
          observedGeneration: generation,
          lastTransitionTime: now,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'NoPodsSelected',
          message: 'no injected pod matches spec.podSelector',
          observedGeneration: generation,
          lastTransitionTime: now,
        };
  if (previous?.status === ready.status) ready.lastTransitionTime = previous.lastTransitionTime;
  return {
    ...current,
    observedGeneration: generation,
    selectedPods,
    conditions: [...(current.conditions ?? []).filter((c) => c.type !== 'Ready'), ready],
  };
}

/** The Event for a change of the Ready condition (status or reason), or undefined (pure). */
export function readyTransitionEvent(
  policy: PolicyObject,
  before: LlmPolicyStatus | undefined,
  after: LlmPolicyStatus,
): EventInput | undefined {
  const was = before?.conditions?.find((c) => c.type === 'Ready');
  const now = after.conditions?.find((c) => c.type === 'Ready');
  if (!now || (was?.status === now.status && was.reason === now.reason)) return undefined;
  return {
    regarding: {
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmPolicy',
      namespace: policy.metadata?.namespace,
      name: policy.metadata?.name,
      uid: policy.metadata?.uid,
    },
    type: now.status === 'True' ? 'Normal' : 'Warning',
    reason: now.reason,
    action: 'Reconcile',
    note: now.message,
  };
}

/** The Event flagging an injected pod that no policy selects: its sidecar allows nothing. */
export function unselectedPodEvent(pod: Pod): EventInput {
  return {
    regarding: {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: pod.metadata?.namespace,
      name: pod.metadata?.name,
      uid: pod.metadata?.uid,
    },
    type: 'Warning',
    reason: 'NoPolicySelected',
    action: 'Reconcile',
    note: 'no LlmPolicy selects this pod: its sidecar allows no model',
  };
}

export interface PolicyStatusOptions {
  client: KubeClient;
  source: PolicySource;
  log: Logger;
  isLeader(): boolean;
  /** This replica, as the reporting instance of Events. */
  identity: string;
  /** Changes are collected this long before a pass. */
  debounceMs?: number;
  /** A full pass this often anyway (missed events, failed writes). */
  resyncMs?: number;
}

export class PolicyStatusController {
  private timer?: NodeJS.Timeout;
  private readonly resync: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** Injected pods already flagged as selected by no policy (uid). */
  private readonly flagged = new Set<string>();
  /** Status writes made (for tests and metrics). */
  writes = 0;

  constructor(private readonly options: PolicyStatusOptions) {
    this.resync = setInterval(() => this.trigger(), options.resyncMs ?? 60_000);
    this.resync.unref();
  }

  /** Something that may change a status happened; a pass follows shortly (leader only). */
  trigger(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pass();
    }, this.options.debounceMs ?? 200);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.resync);
    await this.running;
  }

  private async pass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reconcileAll().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.trigger();
      }
    });
    await this.running;
  }

  private event(input: EventInput): void {
    this.options.client
      .createEvent(input, 'llmproxy.io/operator', this.options.identity)
      .catch((err: unknown) =>
        this.options.log.warn('event not recorded', { reason: errorMessage(err) }),
      );
  }

  /** One pass over every cached policy; writes only those whose status would change. */
  async reconcileAll(): Promise<void> {
    const { source, client, log } = this.options;
    if (!this.options.isLeader() || !source.synced()) return;
    const counts = new Map<string, number>();
    const injected = source.injectedPods();
    const present = new Set(injected.map((p) => p.metadata?.uid));
    for (const uid of this.flagged) if (!present.has(uid)) this.flagged.delete(uid);
    for (const pod of injected) {
      const meta = pod.metadata;
      if (!meta?.name || !meta.namespace || !meta.uid) continue;
      const selecting = source.policiesSelecting({
        namespace: meta.namespace,
        podName: meta.name,
        podUid: meta.uid,
      });
      for (const key of selecting) counts.set(key, (counts.get(key) ?? 0) + 1);
      if (selecting.length > 0) this.flagged.delete(meta.uid);
      else if (!this.flagged.has(meta.uid)) {
        this.flagged.add(meta.uid);
        this.event(unselectedPodEvent(pod));
      }
    }
    for (const policy of source.listPolicies() as PolicyObject[]) {
      const name = policy.metadata?.name;
      const namespace = policy.metadata?.namespace;
      if (!name || !namespace) continue;
      const selected = counts.get(`${namespace}/${name}`) ?? 0;
      const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      if (sameJson(desiredPolicyStatus(policy, selected, now), policy.status)) continue;
      if (!this.options.isLeader()) return;
      try {
        const result = await client.updateStatus(LlmPolicies, name, namespace, (current) =>
          desiredPolicyStatus(current as PolicyObject, selected, now),
        );
        if (result.written) {
          this.writes++;
          const after = (result.object as PolicyObject | undefined)?.status;
          const event = after && readyTransitionEvent(policy, policy.status, after);
          if (event) this.event(event);
        }
      } catch (err) {
        log.warn('policy status not written', {
          reason: errorMessage(err),
          path: `${namespace}/${name}`,
        });
      }
    }
  }
}
