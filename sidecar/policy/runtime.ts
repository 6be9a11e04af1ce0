// A CompiledPolicy turned into what the request path reads: lookups, not scans.
import type { CompiledPolicy, ProviderGrant } from './compiled.js';
import { InvalidPolicyError } from './compiled.js';
import { ModelScope } from './scope.js';

export interface RuntimeProvider {
  grant: ProviderGrant;
  target: URL;
  scope: ModelScope;
  /** Upstream URLs by endpoint path, built once per policy. */
  urls: Map<string, URL>;
}

export interface RuntimePolicy {
  policy: CompiledPolicy;
  providers: ReadonlyMap<string, RuntimeProvider>;
}

/** Builds the runtime form, refusing plain-HTTP upstreams outside loopback and the cluster. */
export function toRuntimePolicy(policy: CompiledPolicy): RuntimePolicy {
  const problems: string[] = [];
  const providers = new Map<string, RuntimeProvider>();
  policy.providers.forEach((grant, i) => {
    const target = new URL(grant.baseURL);
    if (target.protocol === 'http:' && !isLocalOrClusterHost(target.hostname)) {
      problems.push(
        `/providers/${i}/baseURL: plain http is allowed only to loopback or cluster-local hosts; use https`,
      );
    }
    if ((grant.type === 'openai' || grant.type === 'anthropic') && target.pathname !== '/') {
      problems.push(
        `/providers/${i}/baseURL: give the provider's origin (e.g. https://api.openai.com); the client's path already carries /v1`,
      );
    }
    if (target.username || target.password) {
      problems.push(
        `/providers/${i}/baseURL: must not carry credentials; use the credentials field`,
      );
    }
    providers.set(grant.name, {
      grant,
      target,
      scope: new ModelScope(grant.models),
      urls: new Map(),
    });
  });
  if (problems.length > 0) throw new InvalidPolicyError(problems);
  return { policy, providers };
}

const IPV4_LOOPBACK = /^127(?:\.\d{1,3}){3}$/;
const CLUSTER_SUFFIXES = ['.svc', '.svc.cluster.local', '.cluster.local'];

export function isLocalOrClusterHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return (
    host === 'localhost' ||
    host === '::1' ||
    IPV4_LOOPBACK.test(host) ||
    CLUSTER_SUFFIXES.some((suffix) => host.endsWith(suffix))
  );
}
