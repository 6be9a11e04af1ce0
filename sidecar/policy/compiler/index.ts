// The policy compiler: LlmPolicies and LlmBudgets → one pod's CompiledPolicy. Pure; used by the
// operator for every injected pod and by the standalone sidecar for `--policy-file` manifests.
export { compile, type CompileInput } from './compile-pod.js';
export { createCompilerIndex, type CompilerIndex, type PodIdentity } from './selector-index.js';
export {
  type CompileResult,
  type PodCounts,
  type ProviderConflict,
  originOf,
  shareOf,
} from './compile.js';
export {
  compileManifestStream,
  parseManifests,
  ManifestError,
  type StandalonePod,
} from './manifests.js';
export { explain, modelSummary, type Explanation, type Verdict } from './explain.js';
export { selectorMatches } from './selector.js';
export { compileCredentials } from './compile.js';
