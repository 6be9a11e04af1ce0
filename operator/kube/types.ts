// The JSON shapes of the Kubernetes objects the operator reads and writes, as they are on the
// wire (timestamps are strings). client-node's generated models turn them into Dates through
// its serializer, which our raw client does not use, so they would lie about the types.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface KubeList<T extends KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface Pod extends KubeObject {
  spec?: {
    serviceAccountName?: string;
    nodeName?: string;
    containers: { name: string; image?: string; [key: string]: unknown }[];
    [key: string]: unknown;
  };
  status?: { phase?: string; podIP?: string; [key: string]: unknown };
}

export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
  };
}

/** What a TokenReview says about a token; `extra` carries the pod binding of projected tokens. */
export interface TokenReviewResult {
  authenticated: boolean;
  user?: {
    username?: string;
    uid?: string;
    groups?: string[];
    extra?: Record<string, string[]>;
  };
  audiences?: string[];
  error?: string;
}

/** The object an Event is about. */
export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventInput {
  regarding: ObjectReference;
  type: 'Normal' | 'Warning';
  /** UpperCamelCase, machine-readable: `PolicyNacked`, `SecretNotFound`. */
  reason: string;
  /** What the controller did: `Distribute`, `Reconcile`. */
  action: string;
  /** Human-readable, at most 1 KiB; never a secret or a header value. */
  note: string;
}
