// Jittered exponential backoff, shared by every reconnect loop (sidecar and operator).

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter"
 * (half fixed, half random) so that many clients losing the same server at once spread out
 * instead of returning in lockstep, yet none retries immediately.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: number): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
