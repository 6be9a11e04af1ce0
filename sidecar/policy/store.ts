// Holds the policy in force. A sidecar that never had one denies everything (fail closed);
// a bad update is refused and the last good policy stays (fail static).
import type { CompiledPolicy } from './compiled.js';
import { toRuntimePolicy, type RuntimePolicy } from './runtime.js';

export type PolicyListener = (policy: CompiledPolicy) => void;

export class PolicyStore {
  private runtime: RuntimePolicy | undefined;
  private loadedAt: number | undefined;
  private readonly listeners: PolicyListener[] = [];

  current(): RuntimePolicy | undefined {
    return this.runtime;
  }

  /** Milliseconds since the policy in force was loaded, or undefined before the first. */
  age(now: number): number | undefined {
    return this.loadedAt === undefined ? undefined : now - this.loadedAt;
  }

  /** Puts a policy in force; throws InvalidPolicyError and keeps the old one if it cannot be enforced. */
  set(policy: CompiledPolicy, now: number): boolean {
    if (this.runtime?.policy.version === policy.version) return false;
    const next = toRuntimePolicy(policy);
    for (const listener of this.listeners) listener(policy);
    this.runtime = next;
    this.loadedAt = now;
    return true;
  }

  onChange(listener: PolicyListener): void {
    this.listeners.push(listener);
  }
}
