/** Retry delays shared by everything that reconnects or retries against ZooKeeper. */

/**
 * The delay before retry number `attempt` (0 for the first), ms: exponential from `baseMs`,
 * capped at `capMs`, with "equal jitter" (a random point in the upper half) so that many
 * gateways retrying against one ensemble do not retry in step.
 */
export function backoffDelay(attempt: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
