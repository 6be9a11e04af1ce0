// The V8 heap settings a sidecar runs with in a pod (injected as NODE_OPTIONS). V8 otherwise grows
// the heap lazily to ~150 MB under load although the live heap stays near 20 MB (docs/benchmarks.md);
// capped, it collects sooner and stays inside the container's memory limit. Request bodies in
// memory are bounded separately (--max-buffered-bytes), so the cap leaves them room.
export const SIDECAR_NODE_OPTIONS = '--max-old-space-size=96 --max-semi-space-size=2';
