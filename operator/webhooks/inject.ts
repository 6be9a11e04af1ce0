// Sidecar injection as a pure function: (pod, its namespace's labels, configuration, CA bundle)
// -> the pod to store. The webhook server only decodes, calls this, and diffs the result.
//
// The operator CA reaches the sidecar inline: it is written into the pod annotation
// `llmproxy.io/ca-bundle` and projected into the sidecar alone as a file by a downwardAPI
// volume. No per-namespace ConfigMap has to exist before the pod starts (the webhook makes no
// API calls), and during a CA rotation the operator can patch the annotation of running pods:
// the kubelet refreshes the file and the sidecar re-reads it on every connect.
import { SIDECAR_MALLOC_ENV, SIDECAR_PROCESS_ENV } from '../../sidecar/node-options.js';
import { QUANTITY, type OperatorSettings } from '../config-file.js';

export const ANNOTATION_INJECT = 'llmproxy.io/inject';
export const LABEL_NAMESPACE_INJECTION = 'llmproxy.io/injection';
export const ANNOTATION_STATUS = 'llmproxy.io/status';
export const ANNOTATION_CA_BUNDLE = 'llmproxy.io/ca-bundle';
export const ANNOTATION_CPU = 'llmproxy.io/sidecar-cpu';
export const ANNOTATION_MEMORY = 'llmproxy.io/sidecar-memory';
export const ANNOTATION_CPU_LIMIT = 'llmproxy.io/sidecar-cpu-limit';
export const ANNOTATION_MEMORY_LIMIT = 'llmproxy.io/sidecar-memory-limit';
export const ANNOTATION_LOG_LEVEL = 'llmproxy.io/sidecar-log-level';
const ANNOTATION_DEFAULT_CONTAINER = 'kubectl.kubernetes.io/default-container';

export const SIDECAR_NAME = 'llmproxy-sidecar';
export const TOKEN_VOLUME = 'llmproxy-token';
export const CA_VOLUME = 'llmproxy-ca';
export const TOKEN_DIR = '/var/run/secrets/llmproxy.io/token';
export const CA_DIR = '/var/run/secrets/llmproxy.io/ca';
export const TOKEN_AUDIENCE = 'llmproxy.io';
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const SIDECAR_UID = 65532;

type Json = Record<string, unknown>;

export interface Container {
  name: string;
  env?: EnvVar[];
  [key: string]: unknown;
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
export interface Volume {
  name: string;
  [key: string]: unknown;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  [key: string]: unknown;
}
export interface PodObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: PodSpec;
  [key: string]: unknown;
}

export interface InjectionContext {
  config: OperatorSettings;
  /** Labels of the pod's namespace, from the informer cache. */
  namespaceLabels: Readonly<Record<string, string>>;
  /** The namespace the pod is created in (AdmissionRequest.namespace: the pod may omit it). */
  namespace: string;
  /** PEM of the CA(s) that sign the operator's serving certificate (old + new during rotation). */
  caBundle: string;
  /** true: init container with restartPolicy Always (Kubernetes 1.29+); false: a regular one. */
  nativeSidecars: boolean;
  /** The operator's version, recorded in the status annotation. */
  version: string;
}

export type InjectionOutcome =
  | { action: 'skip'; reason: string; warnings: string[] }
  | { action: 'inject'; pod: PodObject; warnings: string[] };

/** A pod that asked for the proxy but cannot get a working one: the request is refused. */
export class InjectionError extends Error {
  constructor(
    readonly code: 'invalid_annotation' | 'unsupported_pod',
    message: string,
  ) {
    super(message);
  }
}

/** Whether this pod opted in (annotation), was opted in by its namespace, or opted out. */
export function injectionRequested(
  pod: PodObject,
  namespaceLabels: Readonly<Record<string, string>>,
): { requested: boolean; explicit: boolean; reason: string } {
  const annotation = pod.metadata?.annotations?.[ANNOTATION_INJECT];
  if (annotation === 'false') return { requested: false, explicit: true, reason: 'pod opted out' };
  if (annotation === 'true') return { requested: true, explicit: true, reason: 'pod annotation' };
  if (namespaceLabels[LABEL_NAMESPACE_INJECTION] === 'enabled') {
    return { requested: true, explicit: false, reason: 'namespace label' };
  }
  return { requested: false, explicit: false, reason: 'not opted in' };
}

/**
 * Decides and performs the injection. Idempotent: a pod this returns, passed again, comes back
 * equal (everything is replaced by name, nothing appended twice). Throws InjectionError when an
 * opted-in pod cannot be injected as asked.
 */
export function injectPod(pod: PodObject, ctx: InjectionContext): InjectionOutcome {
  if (ctx.namespace === ctx.config.operator.namespace) {
    return { action: 'skip', reason: "the operator's own namespace", warnings: [] };
  }
  const wanted = injectionRequested(pod, ctx.namespaceLabels);
  if (!wanted.requested) return { action: 'skip', reason: wanted.reason, warnings: [] };
  if (!wellFormed(pod)) {
    throw new InjectionError('unsupported_pod', 'llmproxy: the pod is not a well-formed Pod');
  }
  const unfit = unfitReason(pod.spec, ctx.config.sidecar.port);
  if (unfit) {
    const reason = `llmproxy: ${unfit}`;
    if (wanted.explicit) throw new InjectionError('unsupported_pod', reason);
    return { action: 'skip', reason, warnings: [`${reason}; not injected`] };
  }
  const leak = tokenLeak(pod.spec);
  if (leak) throw new InjectionError('unsupported_pod', `llmproxy: ${leak}`);
  const settings = sidecarSettings(pod, ctx.config);
  const out = structuredClone(pod) as PodObject & { spec: PodSpec };
  const sidecar = sidecarContainer(ctx, settings);
  placeSidecar(out.spec, sidecar, ctx.nativeSidecars);
  out.spec.volumes = upsertByName(out.spec.volumes ?? [], sidecarVolumes());
  // The token projection needs a service account. The ServiceAccount admission plugin has set
  // it before us in a normal cluster; where it is off, do what it would do.
  if (typeof out.spec.serviceAccountName !== 'string' || out.spec.serviceAccountName === '') {
    const legacy = out.spec.serviceAccount;
    out.spec.serviceAccountName = typeof legacy === 'string' && legacy ? legacy : 'default';
  }
  const wired: string[] = [];
  for (const container of out.spec.containers) {
    if (container.name === SIDECAR_NAME) continue;
    container.env = withAppEnv(container.env, ctx.config.sidecar.port);
    wired.push(container.name);
  }
  const annotations = { ...(out.metadata?.annotations ?? {}) };
  annotations[ANNOTATION_CA_BUNDLE] = ctx.caBundle;
  annotations[ANNOTATION_STATUS] = statusAnnotation(ctx, settings, wired);
  const firstApp = out.spec.containers.find((c) => c.name !== SIDECAR_NAME);
  if (!annotations[ANNOTATION_DEFAULT_CONTAINER] && firstApp) {
    annotations[ANNOTATION_DEFAULT_CONTAINER] = firstApp.name;
  }
  out.metadata = { ...(out.metadata ?? {}), annotations };
  return { action: 'inject', pod: out, warnings: [] };
}

/** Pods the sidecar cannot serve, or could not keep its keys from the app in. */
function unfitReason(spec: PodSpec, port: number): string | undefined {
  if (spec.hostNetwork === true) {
    return `a hostNetwork pod cannot get a sidecar (its loopback port ${port} is the node's)`;
  }
  if (spec.shareProcessNamespace === true) {
    return 'with shareProcessNamespace the app could read the provider keys from the sidecar process';
  }
  return undefined;
}

/**
 * The operator hands a pod's keys to whoever holds that pod's llmproxy.io token, so no container
 * but the sidecar may get one: neither by mounting the sidecar's volumes nor by projecting its
 * own token for the audience.
 */
function tokenLeak(spec: PodSpec): string | undefined {
  const ours = new Set([TOKEN_VOLUME, CA_VOLUME]);
  const others = [...spec.containers, ...(spec.initContainers ?? [])].filter(
    (c) => c.name !== SIDECAR_NAME,
  );
  for (const container of others) {
    const mounts = Array.isArray(container.volumeMounts) ? container.volumeMounts : [];
    const mount = mounts.find((m) => ours.has((m as { name?: string } | null)?.name ?? ''));
    if (mount) {
      return `container ${container.name} mounts ${(mount as { name: string }).name}, which only the sidecar may mount`;
    }
  }
  for (const volume of spec.volumes ?? []) {
    if (volume.name === TOKEN_VOLUME) continue;
    const sources = (volume.projected as { sources?: unknown } | undefined)?.sources;
    const audiences = (Array.isArray(sources) ? sources : []).map(
      (s) =>
        (s as { serviceAccountToken?: { audience?: string } } | null)?.serviceAccountToken
          ?.audience,
    );
    if (audiences.includes(TOKEN_AUDIENCE)) {
      return `volume ${volume.name} projects a token for the ${TOKEN_AUDIENCE} audience, which only the sidecar may hold`;
    }
  }
  return undefined;
}

const isNamed = (x: unknown): boolean =>
  x !== null && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string';
const isListOf = (x: unknown, optional: boolean): boolean =>
  (optional && x === undefined) || (Array.isArray(x) && x.every(isNamed));

/** The API server sends decoded Pods; anything else (a hand-made review) is refused, not crashed on. */
function wellFormed(pod: PodObject): pod is PodObject & { spec: PodSpec } {
  const spec = pod.spec;
  const annotations = pod.metadata?.annotations ?? {};
  return (
    spec !== null &&
    typeof spec === 'object' &&
    isListOf(spec.containers, false) &&
    isListOf(spec.initContainers, true) &&
    isListOf(spec.volumes, true) &&
    [...spec.containers, ...(spec.initContainers ?? [])].every((c) => isListOf(c.env, true)) &&
    typeof annotations === 'object' &&
    Object.values(annotations).every((v) => typeof v === 'string')
  );
}

interface SidecarSettings {
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  logLevel: string;
}

/** Config defaults, overridden by the pod's annotations (validated). */
export function sidecarSettings(pod: PodObject, config: OperatorSettings): SidecarSettings {
  const annotations = pod.metadata?.annotations ?? {};
  const requests: Record<string, string> = { ...(config.sidecar.resources.requests ?? {}) };
  const limits: Record<string, string> = { ...(config.sidecar.resources.limits ?? {}) };
  const problems: string[] = [];
  const quantity = (key: string, into: Record<string, string>, field: string): void => {
    const value = annotations[key];
    if (value === undefined) return;
    if (!new RegExp(QUANTITY).test(value)) {
      problems.push(
        `${key}: ${JSON.stringify(value.slice(0, 40))} is not a quantity (e.g. 100m, 128Mi)`,
      );
    } else into[field] = value;
  };
  quantity(ANNOTATION_CPU, requests, 'cpu');
  quantity(ANNOTATION_MEMORY, requests, 'memory');
  quantity(ANNOTATION_CPU_LIMIT, limits, 'cpu');
  quantity(ANNOTATION_MEMORY_LIMIT, limits, 'memory');
  for (const resource of ['cpu', 'memory']) {
    const request = requests[resource];
    const limit = limits[resource];
    if (request && limit && parseQuantity(request) > parseQuantity(limit)) {
      problems.push(`sidecar ${resource} request ${request} exceeds its limit ${limit}`);
    }
  }
  const logLevel = annotations[ANNOTATION_LOG_LEVEL] ?? config.sidecar.logLevel;
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) {
    problems.push(`${ANNOTATION_LOG_LEVEL}: must be one of error, warn, info, debug`);
  }
  if (problems.length > 0) {
    throw new InjectionError('invalid_annotation', `llmproxy: ${problems.join('; ')}`);
  }
  return { resources: { requests, limits }, logLevel };
}

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A quantity's value in base units (cores, bytes); only for comparing two of them. */
export function parseQuantity(value: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$/.exec(value);
  const factor = SUFFIX[match?.[2] ?? 'x'];
  if (!match || factor === undefined) return Number.NaN;
  return Number(match[1]) * factor;
}

function sidecarContainer(ctx: InjectionContext, settings: SidecarSettings): Container {
  const { operator, sidecar } = ctx.config;
  const operatorUrl = `https://${operator.serviceName}.${operator.namespace}.svc:${operator.distributionPort}`;
  const probe = (path: string, periodSeconds: number, failureThreshold: number): Json => ({
    httpGet: { path, port: sidecar.probePort, scheme: 'HTTPS' },
    periodSeconds,
    timeoutSeconds: 1,
    failureThreshold,
  });
  const env: EnvVar[] = [
    fieldEnv('LLMPROXY_POD_NAME', 'metadata.name'),
    fieldEnv('LLMPROXY_POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('LLMPROXY_POD_UID', 'metadata.uid'),
    fieldEnv('LLMPROXY_SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    ...Object.entries(SIDECAR_PROCESS_ENV).map(([name, value]) => ({ name, value })),
  ];
  if (ctx.config.redis.url) env.push({ name: 'LLMPROXY_REDIS_URL', value: ctx.config.redis.url });
  const container: Container = {
    name: SIDECAR_NAME,
    image: sidecar.image,
    imagePullPolicy: sidecar.imagePullPolicy,
    command: [...sidecar.command],
    args: [
      '--operator-url',
      operatorUrl,
      '--token-file',
      `${TOKEN_DIR}/token`,
      '--ca-file',
      `${CA_DIR}/ca.crt`,
      '--listen',
      `127.0.0.1:${sidecar.port}`,
      '--admin-listen',
      `127.0.0.1:${sidecar.adminPort}`,
      '--probe-listen',
      `0.0.0.0:${sidecar.probePort}`,
      '--log-level',
      settings.logLevel,
    ],
    env,
    ports: [{ name: 'llmproxy-probe', containerPort: sidecar.probePort, protocol: 'TCP' }],
    resources: settings.resources,
    // Up before the app starts (native sidecars wait for it), then watched as usual.
    startupProbe: probe('/healthz', 1, 60),
    readinessProbe: probe('/readyz', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: CA_VOLUME, mountPath: CA_DIR, readOnly: true },
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  if (ctx.nativeSidecars) container.restartPolicy = 'Always';
  return container;
}

function fieldEnv(name: string, fieldPath: string): EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/**
 * Native: first init container, so it runs before the other init containers and the app.
 * Fallback: the last regular container. Any copy left in the other list (a pod injected under
 * the other mode) is removed, so there is always exactly one.
 */
function placeSidecar(spec: PodSpec, sidecar: Container, native: boolean): void {
  const notSidecar = (c: Container) => c.name !== SIDECAR_NAME;
  if (native) {
    spec.containers = spec.containers.filter(notSidecar);
    const init = spec.initContainers ?? [];
    const index = init.findIndex((c) => c.name === SIDECAR_NAME);
    if (index < 0) init.unshift(sidecar);
    else if (!isOurSidecar(init[index], sidecar)) init[index] = sidecar;
    spec.initContainers = init;
  } else {
    if (spec.initContainers) {
      spec.initContainers = spec.initContainers.filter(notSidecar);
      if (spec.initContainers.length === 0) delete spec.initContainers;
    }
    const index = spec.containers.findIndex((c) => c.name === SIDECAR_NAME);
    if (index < 0) spec.containers.push(sidecar);
    else if (!isOurSidecar(spec.containers[index], sidecar)) spec.containers[index] = sidecar;
  }
}

function sidecarVolumes(): Volume[] {
  return [
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: TOKEN_EXPIRATION_SECONDS,
              path: 'token',
            },
          },
        ],
      },
    },
    {
      name: CA_VOLUME,
      projected: {
        sources: [
          {
            downwardAPI: {
              items: [
                {
                  path: 'ca.crt',
                  fieldRef: { fieldPath: `metadata.annotations['${ANNOTATION_CA_BUNDLE}']` },
                },
              ],
            },
          },
        ],
      },
    },
  ];
}

/** Where the app's SDKs find the proxy; a value the container sets itself wins. */
export function appEnv(port: number): EnvVar[] {
  return [
    { name: 'OPENAI_BASE_URL', value: `http://127.0.0.1:${port}/openai/v1` },
    { name: 'ANTHROPIC_BASE_URL', value: `http://127.0.0.1:${port}/anthropic` },
    // SDKs refuse to start without a key; the real one is added by the sidecar.
    { name: 'OPENAI_API_KEY', value: 'llmproxy-placeholder' },
    { name: 'ANTHROPIC_API_KEY', value: 'llmproxy-placeholder' },
  ];
}

function withAppEnv(env: EnvVar[] | undefined, port: number): EnvVar[] {
  const out = [...(env ?? [])];
  const present = new Set(out.map((e) => e.name));
  for (const entry of appEnv(port)) if (!present.has(entry.name)) out.push(entry);
  return out;
}

/**
 * Replaces items with the same name in place, appends the others. An existing item that already
 * holds everything we would write (plus the API server's defaults, such as
 * terminationMessagePath or a volume's defaultMode) is kept, so that reinvocation on a stored,
 * defaulted pod yields no patch at all.
 */
function upsertByName<T extends { name: string }>(list: T[], items: T[]): T[] {
  const out = [...list];
  for (const item of items) {
    const index = out.findIndex((x) => x.name === item.name);
    if (index < 0) out.push(item);
    else if (!subsumes(out[index], item)) out[index] = item;
  }
  return out;
}

/** Fields the API server adds to a container by defaulting; nothing else may sit beside ours. */
const DEFAULTED_CONTAINER_FIELDS = new Set([
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
]);

/**
 * A sidecar the pod already has is kept only when it is what we would inject, up to defaulting:
 * a pod must not smuggle its own `llmproxy-sidecar` (say, with envFrom or a lifecycle hook) in.
 */
function isOurSidecar(existing: Container | undefined, desired: Container): boolean {
  if (!existing || !subsumes(existing, desired)) return false;
  return Object.keys(existing).every((k) => k in desired || DEFAULTED_CONTAINER_FIELDS.has(k));
}

/** Whether `existing` has every field of `desired` with the same value (arrays element-wise). */
export function subsumes(existing: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    return (
      Array.isArray(existing) &&
      existing.length === desired.length &&
      desired.every((d, i) => subsumes(existing[i], d))
    );
  }
  if (desired !== null && typeof desired === 'object') {
    if (existing === null || typeof existing !== 'object' || Array.isArray(existing)) return false;
    return Object.entries(desired).every(([key, value]) =>
      subsumes((existing as Record<string, unknown>)[key], value),
    );
  }
  return existing === desired;
}

function statusAnnotation(
  ctx: InjectionContext,
  settings: SidecarSettings,
  wired: string[],
): string {
  return JSON.stringify({
    version: ctx.version,
    image: ctx.config.sidecar.image,
    mode: ctx.nativeSidecars ? 'native-sidecar' : 'container',
    sidecar: SIDECAR_NAME,
    volumes: [TOKEN_VOLUME, CA_VOLUME],
    containers: wired,
    logLevel: settings.logLevel,
  });
}

/** Only V8 heap sizing may come through NODE_OPTIONS: anything else could load code. */
const HEAP_FLAGS_ONLY = /^(\s*--max-(old|semi)-space-size=\d{1,6})*\s*$/;
/** The malloc settings the webhook injects take a byte count, nothing else. */
const BYTE_COUNT = /^\d{1,10}$/;

function imageRepository(image: unknown): string {
  if (typeof image !== 'string') return '';
  const name = image.split('@')[0] ?? '';
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(0, colon) : name;
}

/**
 * Why the operator must not serve this stored pod although it carries the status annotation,
 * which a pod can set on itself. The operator hands a pod's keys to whoever holds its
 * llmproxy.io token, so: no container but the one sidecar may hold that token (ephemeral
 * containers included), no shared process namespace, and, when the injection settings are
 * known, the "sidecar" must be the injected program talking to this operator: its image
 * repository and command, one --operator-url naming this operator, and an environment that
 * cannot load other code. Version upgrades (image tag, heap sizes, malloc settings, ports) still
 * pass.
 * Undefined when the pod may be served. Pure.
 */
export function servingProblem(pod: PodObject, config?: OperatorSettings): string | undefined {
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers)) return 'the pod has no containers';
  if (spec.shareProcessNamespace === true) {
    return 'with shareProcessNamespace the app could read the provider keys from the sidecar process';
  }
  const ephemeral = Array.isArray(spec.ephemeralContainers)
    ? (spec.ephemeralContainers as Container[])
    : [];
  const leak = tokenLeak({
    ...spec,
    initContainers: [...(spec.initContainers ?? []), ...ephemeral],
  });
  if (leak) return leak;
  const sidecars = [...spec.containers, ...(spec.initContainers ?? [])].filter(
    (c) => c.name === SIDECAR_NAME,
  );
  if (sidecars.length !== 1 || ephemeral.some((c) => c.name === SIDECAR_NAME)) {
    return `the pod must have exactly one ${SIDECAR_NAME} container, the injected one`;
  }
  if (!config) return undefined;
  const actual = sidecars[0] as Container;
  const expectedUrl = `https://${config.operator.serviceName}.${config.operator.namespace}.svc:${config.operator.distributionPort}`;
  if (imageRepository(actual.image) !== imageRepository(config.sidecar.image)) {
    return `the ${SIDECAR_NAME} container does not run the sidecar image`;
  }
  if (JSON.stringify(actual.command ?? []) !== JSON.stringify(config.sidecar.command)) {
    return `the ${SIDECAR_NAME} container's command is not the sidecar's`;
  }
  const args = Array.isArray(actual.args) ? (actual.args as unknown[]).map(String) : [];
  const urlFlags = args.filter((a) => a === '--operator-url' || a.startsWith('--operator-url='));
  const at = args.indexOf('--operator-url');
  if (
    urlFlags.length !== 1 ||
    at < 0 ||
    args[at + 1] !== expectedUrl ||
    args.some((a) => a.startsWith('--policy-file'))
  ) {
    return `the ${SIDECAR_NAME} container does not connect to this operator`;
  }
  if (actual.envFrom !== undefined) return `the ${SIDECAR_NAME} container takes env from elsewhere`;
  for (const variable of actual.env ?? []) {
    const allowed =
      variable.name.startsWith('LLMPROXY_') ||
      (variable.name === 'NODE_OPTIONS' &&
        variable.valueFrom === undefined &&
        HEAP_FLAGS_ONLY.test(variable.value ?? '')) ||
      (Object.hasOwn(SIDECAR_MALLOC_ENV, variable.name) &&
        variable.valueFrom === undefined &&
        BYTE_COUNT.test(variable.value ?? ''));
    if (!allowed) return `the ${SIDECAR_NAME} container sets ${variable.name.slice(0, 64)}`;
  }
  return undefined;
}
