// AdmissionReview v1 in and out, as pure functions: decode an untrusted body, and answer a
// request with the injection patch or the validation verdict. No I/O: what the handlers need
// from the cluster (namespace labels, other budgets) comes from informer caches via `deps`.
import type { OperatorSettings } from '../config-file.js';
import { InjectionError, injectPod, LABEL_NAMESPACE_INJECTION, type PodObject } from './inject.js';
import { diffPatch } from './patch.js';
import { validateLlmObject } from './validate.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  namespace?: string;
  operation?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** A body that is not an AdmissionReview v1 request; answered with HTTP 400. */
export class BadReviewError extends Error {
  readonly code = 'bad_admission_review';
}

const UID = /^[A-Za-z0-9-]{1,128}$/;

/** Parses and checks the envelope; the object inside is checked by each handler. */
export function decodeReview(body: Buffer): AdmissionRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadReviewError('the body is not JSON');
  }
  const review = parsed as { apiVersion?: unknown; kind?: unknown; request?: unknown } | null;
  if (!review || typeof review !== 'object' || Array.isArray(review)) {
    throw new BadReviewError('expected an AdmissionReview object');
  }
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== 'AdmissionReview') {
    throw new BadReviewError(`expected apiVersion ${ADMISSION_API_VERSION}, kind AdmissionReview`);
  }
  const request = review.request as AdmissionRequest | undefined;
  if (!request || typeof request !== 'object' || typeof request.uid !== 'string') {
    throw new BadReviewError('request.uid is missing');
  }
  if (!UID.test(request.uid)) throw new BadReviewError('request.uid is not a UID');
  return request;
}

export function encodeReview(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export interface PodAdmissionDeps {
  config: OperatorSettings;
  /** From the namespace informer; undefined when the namespace is not (yet) in the cache. */
  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined;
  caBundle(): string;
  nativeSidecars: boolean;
  version: string;
}

const deny = (uid: string, code: number, message: string, warnings: string[] = []) => ({
  uid,
  allowed: false,
  status: { code, message, reason: code === 500 ? 'InternalError' : 'Forbidden' },
  ...(warnings.length > 0 ? { warnings } : {}),
});

const allow = (uid: string, warnings: string[] = []): AdmissionResponse => ({
  uid,
  allowed: true,
  ...(warnings.length > 0 ? { warnings } : {}),
});

export function admitPod(request: AdmissionRequest, deps: PodAdmissionDeps): AdmissionResponse {
  const { uid } = request;
  if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE') return allow(uid);
  const pod = request.object as PodObject | undefined;
  if (!pod || typeof pod !== 'object' || Array.isArray(pod)) {
    return deny(uid, 400, 'llmproxy: the request carries no pod');
  }
  const namespace = request.namespace ?? pod.metadata?.namespace ?? '';
  // Only pods that passed the API server's filters reach us: annotated ones, or any pod of a
  // namespace with the injection label. A namespace missing from the cache (created a moment
  // ago) must then be a labelled one.
  const labels = deps.namespaceLabels(namespace) ?? { [LABEL_NAMESPACE_INJECTION]: 'enabled' };
  try {
    const outcome = injectPod(pod, {
      config: deps.config,
      namespaceLabels: labels,
      namespace,
      caBundle: deps.caBundle(),
      nativeSidecars: deps.nativeSidecars,
      version: deps.version,
    });
    if (outcome.action === 'skip') return allow(uid, outcome.warnings);
    const patch = diffPatch(pod, outcome.pod);
    if (patch.length === 0) return allow(uid, outcome.warnings);
    return {
      ...allow(uid, outcome.warnings),
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    };
  } catch (err) {
    if (err instanceof InjectionError) return deny(uid, 400, err.message);
    throw err;
  }
}

export interface LlmObjectAdmissionDeps {
  config: OperatorSettings;
  /** From the LlmBudget informer. */
  budgetsInNamespace(namespace: string): readonly unknown[];
}

export function admitLlmObject(
  request: AdmissionRequest,
  deps: LlmObjectAdmissionDeps,
): AdmissionResponse {
  const { uid } = request;
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(uid);
  const object = request.object;
  if (!object || typeof object !== 'object') return allow(uid);
  const namespace = request.namespace ?? '';
  const verdict = validateLlmObject({
    object,
    config: deps.config,
    budgetsInNamespace: deps.budgetsInNamespace(namespace),
  });
  if (!verdict.allowed) return deny(uid, 400, verdict.message ?? 'refused', verdict.warnings);
  return allow(uid, verdict.warnings);
}
