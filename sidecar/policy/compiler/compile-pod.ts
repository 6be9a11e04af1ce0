// compile(): one pod's CompiledPolicy from the policies and budgets of its namespace.
import type { LlmBudget, LlmPolicy } from '../../../crds/v1alpha1/index.js';
import type { CompiledPolicy } from '../compiled.js';
import type { PodCounts } from './compile.js';
import { createCompilerIndex, type PodIdentity } from './selector-index.js';

export interface CompileInput {
  pod: PodIdentity;
  policies: readonly LlmPolicy[];
  budgets: readonly LlmBudget[];
  /** Pods each policy selects (operator only): divides its shared limits. Absent: whole limits. */
  podCounts?: PodCounts;
}

/** Pure and deterministic: the same input, in any order, gives the same bytes and version. */
export function compile(input: CompileInput): CompiledPolicy {
  return createCompilerIndex(input.policies, input.budgets).compileFor(input.pod, input.podCounts);
}
