// LlmPolicy status, written by the leader alone through the status subresource: the Ready
// condition, observedGeneration, how many injected pods the policy selects, and the state and
// age of the Secrets Manager secrets it references. A write happens only when the status would
// change; the decision is a pure function of the cached objects and what the operator observed.
import type { LlmPolicy, LlmPolicyStatus } from '../../crds/v1alpha1/index.js';
import { errorMessage } from '../../sidecar/control/protocol.js';
import type {
  AwsSecretsManagerCredentials,
  SecretFailureReason,
} from '../../sidecar/secrets/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { secretRefsOf, type SecretObservation } from '../keys/index.js';
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
type SecretStatus = NonNullable<LlmPolicyStatus['secrets']>[number];
type PolicyObject = KubeObject & { status?: LlmPolicyStatus; spec?: LlmPolicy['spec'] };

/** The condition type that warns of a secret older than the rotation period. */
export const ROTATION_CONDITION = 'SecretRotationOverdue';
export const DEFAULT_ROTATION_PERIOD_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_MESSAGE_CHARS = 1024;

/** One referenced secret as the operator sees it, never with its value. */
export interface SecretView {
  provider: string;
  secretId: string;
  /** When it last changed (RFC 3339), if the operator could describe it. */
  lastChanged?: string;
  /** Why the operator cannot deliver its key now (`fetchFrom: operator` only). */
  problem?: { reason: SecretFailureReason; message: string };
}

export interface SecretsInput {
  secrets: SecretView[];
  rotationPeriodDays: number;
}

/** The Ready reason for a secret the operator cannot deliver (pure). */
export function secretProblemReason(reason: SecretFailureReason): string {
  switch (reason) {
    case 'not_found':
      return 'SecretNotFound';
    case 'access_denied':
    case 'no_aws_credentials':
    case 'decryption_failed':
      return 'SecretAccessDenied';
    case 'not_string':
    case 'not_json':
    case 'json_key_missing':
    case 'empty':
      return 'SecretInvalid';
    default:
      return 'SecretUnavailable';
  }
}

/** Failures that are the configuration's fault: reported even while a cached value is served. */
const LASTING: ReadonlySet<SecretFailureReason> = new Set([
  'not_found',
  'access_denied',
  'no_aws_credentials',
  'decryption_failed',
]);

/**
 * Whether an observed secret is a problem for status (pure): only for `fetchFrom: operator`
 * (the operator's reads are the pods' keys), when the latest read failed and either no usable
 * value is left or the failure will not heal by itself. A first read still running is none.
 */
export function secretProblem(
  observation: SecretObservation,
): { reason: SecretFailureReason; message: string } | undefined {
  const failure = observation.read?.failure;
  if (!failure) return undefined;
  if (observation.read?.usable && !LASTING.has(failure.reason)) return undefined;
  return { reason: failure.reason, message: failure.message };
}

/**
 * The status a policy should have (pure): Ready True while it selects at least one injected pod,
 * False with `NoPodsSelected` otherwise, or with a secret's reason (`SecretNotFound`,
 * `SecretAccessDenied`, ...) while the operator cannot deliver a key the policy names. With
 * `secrets`, each referenced secret's last change is listed and `SecretRotationOverdue` says
 * whether one is older than the rotation period. Other status fields and conditions are kept;
 * a condition keeps its lastTransitionTime while its status does not change.
 */
export function desiredPolicyStatus(
  policy: PolicyObject,
  selectedPods: number,
  now: string,
  secrets?: SecretsInput,
): LlmPolicyStatus {
  const generation = policy.metadata?.generation ?? 0;
  const current = policy.status ?? {};
  const previous = current.conditions?.find((c) => c.type === 'Ready');
  const problems = (secrets?.secrets ?? []).filter((s) => s.problem);
  const first = problems[0]?.problem;
  const ready: Condition = first
    ? {
        type: 'Ready',
        status: 'False',
        reason: secretProblemReason(first.reason),
        message: truncate(
          problems
            .map((s) => `provider "${s.provider}", secret ${s.secretId}: ${s.problem?.message}`)
            .join('; '),
        ),
        observedGeneration: generation,
        lastTransitionTime: now,
      }
    : selectedPods > 0
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
  const status: LlmPolicyStatus = {
    ...current,
    observedGeneration: generation,
    selectedPods,
    conditions: [...(current.conditions ?? []).filter((c) => c.type !== 'Ready'), ready],
  };
  return secrets ? withSecrets(status, secrets, generation, now) : status;
}

/** status.secrets and the rotation condition; a date once known is kept while it cannot be re-read. */
function withSecrets(
  status: LlmPolicyStatus,
  input: SecretsInput,
  generation: number,
  now: string,
): LlmPolicyStatus {
  const { secrets: _previous, ...rest } = status;
  const known = new Map((status.secrets ?? []).map((s) => [`${s.provider}\0${s.secretId}`, s]));
  const entries: SecretStatus[] = input.secrets.map((s) => {
    const lastChangedDate =
      s.lastChanged ?? known.get(`${s.provider}\0${s.secretId}`)?.lastChangedDate;
    return {
      provider: s.provider,
      secretId: s.secretId,
      ...(lastChangedDate ? { lastChangedDate } : {}),
    };
  });
  const others = (status.conditions ?? []).filter((c) => c.type !== ROTATION_CONDITION);
  const dated = entries.filter((e) => e.lastChangedDate);
  const result: LlmPolicyStatus = { ...rest, ...(entries.length > 0 ? { secrets: entries } : {}) };
  if (dated.length === 0) return { ...result, conditions: others };
  const periodMs = input.rotationPeriodDays * DAY_MS;
  const nowMs = Date.parse(now);
  const overdue = dated.filter((e) => nowMs - Date.parse(e.lastChangedDate ?? '') > periodMs);
  const days = `${input.rotationPeriodDays} day${input.rotationPeriodDays === 1 ? '' : 's'}`;
  const condition: Condition =
    overdue.length > 0
      ? {
          type: ROTATION_CONDITION,
          status: 'True',
          reason: 'RotationOverdue',
          // Dates, not ages: the message stays the same from one day to the next.
          message: truncate(
            `${overdue
              .map(
                (e) =>
                  `provider "${e.provider}", secret ${e.secretId}: last changed ${e.lastChangedDate}`,
              )
              .join('; ')}; the rotation period is ${days}`,
          ),
          observedGeneration: generation,
          lastTransitionTime: now,
        }
      : {
          type: ROTATION_CONDITION,
          status: 'False',
          reason: 'RotatedRecently',
          message: `every referenced secret changed within the last ${days}`,
          observedGeneration: generation,
          lastTransitionTime: now,
        };
  const previous = status.conditions?.find((c) => c.type === ROTATION_CONDITION);
  if (previous?.status === condition.status) {
    condition.lastTransitionTime = previous.lastTransitionTime;
  }
  return { ...result, conditions: [...others, condition] };
}

/** The Event for a secret becoming overdue for rotation, or rotated again (pure). */
export function rotationTransitionEvent(
  policy: PolicyObject,
  before: LlmPolicyStatus | undefined,
  after: LlmPolicyStatus,
): EventInput | undefined {
  const was = before?.conditions?.find((c) => c.type === ROTATION_CONDITION);
  const now = after.conditions?.find((c) => c.type === ROTATION_CONDITION);
  if (!now || was?.status === now.status) return undefined;
  if (now.status !== 'True' && was?.status !== 'True') return undefined;
  return {
    regarding: regardingPolicy(policy),
    type: now.status === 'True' ? 'Warning' : 'Normal',
    reason: now.status === 'True' ? 'SecretRotationOverdue' : 'SecretRotated',
    action: 'Reconcile',
    note: now.message,
  };
}

function truncate(text: string): string {
  return text.length <= MAX_MESSAGE_CHARS ? text : `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…`;
}

function regardingPolicy(policy: PolicyObject): EventInput['regarding'] {
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    namespace: policy.metadata?.namespace,
    name: policy.metadata?.name,
    uid: policy.metadata?.uid,
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
    regarding: regardingPolicy(policy),
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
  /** What the operator observed of a referenced secret; without it status lists no secrets. */
  observeSecret?(ref: AwsSecretsManagerCredentials): SecretObservation | undefined;
  /** A secret that last changed longer ago than this is flagged; default 30. */
  rotationPeriodDays?: number;
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

  /** What the operator observed of the policy's secrets (dates to the second), or undefined. */
  private secretsInput(policy: PolicyObject): SecretsInput | undefined {
    const observe = this.options.observeSecret;
    if (!observe || !policy.spec) return undefined;
    const secrets = secretRefsOf(policy).map(({ provider, ref }): SecretView => {
      const seen = observe(ref);
      const problem = ref.fetchFrom === 'operator' && seen ? secretProblem(seen) : undefined;
      const lastChanged = seen?.lastChanged?.toISOString().replace(/\.\d{3}Z$/, 'Z');
      return {
        provider,
        secretId: ref.secretId,
        ...(lastChanged ? { lastChanged } : {}),
        ...(problem ? { problem } : {}),
      };
    });
    return {
      secrets,
      rotationPeriodDays: this.options.rotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS,
    };
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
      const secrets = this.secretsInput(policy);
      if (sameJson(desiredPolicyStatus(policy, selected, now, secrets), policy.status)) continue;
      if (!this.options.isLeader()) return;
      try {
        const result = await client.updateStatus(LlmPolicies, name, namespace, (current) =>
          desiredPolicyStatus(current as PolicyObject, selected, now, secrets),
        );
        if (result.written) {
          this.writes++;
          const after = (result.object as PolicyObject | undefined)?.status;
          for (const transition of [readyTransitionEvent, rotationTransitionEvent]) {
            const event = after && transition(policy, policy.status, after);
            if (event) this.event(event);
          }
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
