// The REST client over the API server. client-node is used for what it does well (loading
// kubeconfig / in-cluster config and applying its auth: certs, tokens, exec and token-file
// providers); requests and watches go through node:https directly so that we control
// timeouts, aborts, content types and error handling. Its generated API classes and its
// Watch (no timeout, no watchdog) are not used.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { LineDecoder } from '../../sidecar/control/protocol.js';
import { canonicalJson } from '../../sidecar/policy/compiled.js';
import { apiVersionOf, Events, resourcePath, type ResourceKind } from './resources.js';
import type { EventInput, KubeList, KubeObject, TokenReviewResult } from './types.js';

export { KubeConfig };

/** Loads the operator's config: in-cluster when running in a pod, else KUBECONFIG / ~/.kube/config. */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('kubeconfig has no current cluster');
  return kc;
}

/** A failed API call; `status` and `reason` come from the API server's Status object. */
export class KubeApiError extends Error {
  readonly code = 'kube_api_error';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}
export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}
export function isGone(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 410;
}

export type PatchType = 'merge' | 'apply' | 'json' | 'strategic';

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  apply: 'application/apply-patch+yaml',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; pages are followed until the end. */
  limit?: number;
}

export interface PatchOptions {
  type?: PatchType;
  /** Required for `apply`; names who owns the fields. */
  fieldManager?: string;
  force?: boolean;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  timeoutSeconds?: number;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

interface RequestInit {
  method?: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

export class KubeClient {
  private readonly agent: http.Agent;
  private readonly server: URL;

  constructor(readonly config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    const Agent = this.server.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 });
  }

  async get<T extends KubeObject>(
    kind: ResourceKind<T>,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await this.request<T>(resourcePath(kind, { namespace, name }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Lists every page; the returned resourceVersion is the one to start a watch from. */
  async list<T extends KubeObject>(
    kind: ResourceKind<T>,
    options: ListOptions = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.request<KubeList<T>>(
        resourcePath(kind, { namespace: options.namespace }),
        {
          query: {
            labelSelector: options.labelSelector,
            fieldSelector: options.fieldSelector,
            limit: options.limit ?? 500,
            continue: continueToken,
          },
        },
      );
      items.push(...page.items.map((item) => withKind(kind, item)));
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);
    return { items, resourceVersion };
  }

  create<T extends KubeObject>(kind: ResourceKind<T>, object: T, namespace?: string): Promise<T> {
    const ns = namespace ?? object.metadata?.namespace;
    return this.request<T>(resourcePath(kind, { namespace: ns }), {
      method: 'POST',
      body: { apiVersion: apiVersionOf(kind), kind: kind.kind, ...object },
    });
  }

  /** Replaces the object; `metadata.resourceVersion` makes it conditional (409 on conflict). */
  replace<T extends KubeObject>(kind: ResourceKind<T>, object: T): Promise<T> {
    const meta = object.metadata ?? {};
    if (!meta.name) throw new Error('replace needs metadata.name');
    return this.request<T>(resourcePath(kind, { namespace: meta.namespace, name: meta.name }), {
      method: 'PUT',
      body: { apiVersion: apiVersionOf(kind), kind: kind.kind, ...object },
    });
  }

  patch<T extends KubeObject>(
    kind: ResourceKind<T>,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    options: PatchOptions = {},
  ): Promise<T> {
    return this.doPatch(kind, name, namespace, patch, options, undefined);
  }

  /** Patches the status subresource, the only way a controller should write status. */
  patchStatus<T extends KubeObject>(
    kind: ResourceKind<T>,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    options: PatchOptions = {},
  ): Promise<T> {
    return this.doPatch(kind, name, namespace, patch, options, 'status');
  }

  /**
   * Writes the status subresource from the object's current state: `compute` returns the new
   * status, or undefined for no change. Nothing is written when the status would not change;
   * on a conflict (someone wrote in between) it re-reads and recomputes.
   */
  async updateStatus<T extends KubeObject & { status?: unknown }>(
    kind: ResourceKind<T>,
    name: string,
    namespace: string | undefined,
    compute: (current: T) => unknown,
    attempts = 5,
  ): Promise<{ written: boolean; object?: T }> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(kind, name, namespace);
      if (!current) return { written: false };
      const status = compute(current);
      if (status === undefined || sameJson(status, current.status)) {
        return { written: false, object: current };
      }
      try {
        const patch = { metadata: { resourceVersion: current.metadata?.resourceVersion }, status };
        const object = await this.patchStatus(kind, name, namespace, patch);
        return { written: true, object };
      } catch (err) {
        if (!isConflict(err) || attempt >= attempts) throw err;
      }
    }
  }

  async delete(kind: ResourceKind, name: string, namespace?: string): Promise<boolean> {
    try {
      await this.request(resourcePath(kind, { namespace, name }), { method: 'DELETE' });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Asks the API server who a bearer token belongs to, for the given audiences only. The token
   * goes in the request body and nowhere else: never into an error or a log line.
   */
  async tokenReview(token: string, audiences: string[]): Promise<TokenReviewResult> {
    const review = await this.request<{ status?: TokenReviewResult }>(
      '/apis/authentication.k8s.io/v1/tokenreviews',
      {
        method: 'POST',
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences },
        },
      },
    );
    return review.status ?? { authenticated: false };
  }

  /** Records an events.k8s.io/v1 Event about an object. */
  async createEvent(input: EventInput, reportingController: string, reportingInstance: string) {
    const namespace = input.regarding.namespace ?? 'default';
    return this.request<KubeObject>(resourcePath(Events, { namespace }), {
      method: 'POST',
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { generateName: `${input.regarding.name ?? 'object'}-`, namespace },
        eventTime: microTime(Date.now()),
        reportingController,
        reportingInstance,
        action: input.action,
        reason: input.reason,
        note: input.note.slice(0, 1024),
        type: input.type,
        regarding: input.regarding,
      },
    });
  }

  /**
   * One watch request: resolves when the server ends the stream, rejects on an HTTP error or
   * when `signal` aborts it. Reconnecting, relisting and watchdogs belong to the Informer.
   */
  async watch<T extends KubeObject>(
    kind: ResourceKind<T>,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const response = await this.open(resourcePath(kind, { namespace: options.namespace }), {
      query: {
        watch: 1,
        allowWatchBookmarks: true,
        resourceVersion: options.resourceVersion,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        timeoutSeconds: options.timeoutSeconds,
      },
      signal,
      timeoutMs: 0,
    });
    if (response.statusCode !== 200) throw await errorFrom(response);
    const decoder = new LineDecoder(MAX_WATCH_LINE_BYTES);
    await new Promise<void>((resolve, reject) => {
      response.on('data', (chunk: Buffer) => {
        try {
          for (const line of decoder.push(chunk)) {
            const event = JSON.parse(line) as WatchEvent<T>;
            if (event.type !== 'ERROR' && event.type !== 'BOOKMARK') {
              event.object = withKind(kind, event.object);
            }
            onEvent(event);
          }
        } catch (err) {
          response.destroy(err as Error);
        }
      });
      response.on('end', resolve);
      response.on('error', reject);
      response.on('close', () => (response.complete ? resolve() : reject(abortError(signal))));
    });
  }

  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.open(path, init);
    const body = await readBody(response);
    if (response.statusCode === undefined || response.statusCode >= 300) {
      throw statusError(response.statusCode ?? 0, body);
    }
    return (body.length === 0 ? {} : JSON.parse(body.toString('utf8'))) as T;
  }

  private doPatch<T extends KubeObject>(
    kind: ResourceKind<T>,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    options: PatchOptions,
    subresource: 'status' | undefined,
  ): Promise<T> {
    const type = options.type ?? 'merge';
    if (type === 'apply' && !options.fieldManager) throw new Error('apply needs a fieldManager');
    return this.request<T>(resourcePath(kind, { namespace, name, subresource }), {
      method: 'PATCH',
      body: patch,
      contentType: PATCH_CONTENT_TYPES[type],
      query: { fieldManager: options.fieldManager, force: options.force },
    });
  }

  private async open(path: string, init: RequestInit): Promise<http.IncomingMessage> {
    const url = new URL(path, this.server);
    for (const [key, value] of Object.entries(init.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const options: https.RequestOptions = { headers: {} };
    await this.config.applyToHTTPSOptions(options);
    const payload = init.body === undefined ? undefined : Buffer.from(JSON.stringify(init.body));
    const headers: Record<string, string | number | string[]> = {
      ...(options.headers as Record<string, string | number | string[]>),
      accept: 'application/json',
    };
    if (payload) {
      headers['content-type'] = init.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    const transport = url.protocol === 'https:' ? https : http;
    const timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signals = [init.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined];
    const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
    return new Promise((resolve, reject) => {
      const req = transport.request(url, {
        method: init.method ?? 'GET',
        headers,
        agent: this.agent,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        auth: options.auth,
        rejectUnauthorized: options.rejectUnauthorized,
        servername: options.servername,
        signal,
      });
      req.on('response', resolve);
      req.on('error', (err) => reject(signal.aborted ? abortError(signal) : err));
      req.end(payload);
    });
  }

  /** Closes pooled connections, so a stopping operator does not hold the event loop open. */
  close(): void {
    this.agent.destroy();
  }
}

function withKind<T extends KubeObject>(kind: ResourceKind<T>, object: T): T {
  // Lists return items without apiVersion/kind; put them back so objects look the same either way.
  return { apiVersion: apiVersionOf(kind), kind: kind.kind, ...object };
}

async function readBody(response: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function errorFrom(response: http.IncomingMessage): Promise<KubeApiError> {
  return statusError(response.statusCode ?? 0, await readBody(response));
}

function statusError(statusCode: number, body: Buffer): KubeApiError {
  try {
    const status = JSON.parse(body.toString('utf8')) as { reason?: string; message?: string };
    return new KubeApiError(
      statusCode,
      status.reason ?? 'Unknown',
      `API server answered ${statusCode}: ${status.message ?? status.reason ?? 'no message'}`,
    );
  } catch {
    return new KubeApiError(statusCode, 'Unknown', `API server answered ${statusCode}`);
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return typeof (reason as { message?: unknown } | null)?.message === 'string'
    ? (reason as Error)
    : new Error('request aborted');
}

/** A metav1.MicroTime: RFC 3339 with exactly six fractional digits, as the API server parses it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Deep equality through canonical JSON, to skip writes that would change nothing. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}
