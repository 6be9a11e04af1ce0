// The process settings a sidecar runs with in a pod, injected by the webhook as its container's
// environment (and used by the tests and `make bench`, so they measure what pods run).

// V8 otherwise grows the heap lazily to ~150 MB under load although the live heap stays near 20 MB
// (docs/benchmarks.md); capped, it collects sooner and stays inside the container's memory limit.
// Request bodies in memory are bounded separately (--max-buffered-bytes), so the cap leaves them room.
export const SIDECAR_NODE_OPTIONS = '--max-old-space-size=96 --max-semi-space-size=2';

/**
 * glibc's malloc raises its mmap and trim thresholds each time it frees a large block (V8 frees
 * several while parsing and compiling at startup) and from then on keeps freed memory instead of
 * returning it: ~5 MB of the sidecar's peak RSS (docs/benchmarks.md, fourth pass). Fixed at
 * glibc's own starting values (128 KiB), they stay there. Numbers only: they cannot load code.
 */
export const SIDECAR_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** The whole injected environment that is not about the pod's identity. */
export const SIDECAR_PROCESS_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: SIDECAR_NODE_OPTIONS,
  ...SIDECAR_MALLOC_ENV,
};
