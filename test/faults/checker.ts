/**
 * The fault campaign's checker: pure functions over what the parties recorded.
 *
 * Hold logs are the interop peers' format (test/peers/README.md): one line per event, appended
 * with one write(2) to an O_APPEND file shared by every party, so line order is event order:
 * `ENTER|LEAD <id> <round> [fencingToken]`, `EXIT|UNLEAD <id> <round>`, and from gateway clients
 * `LOSS <id>` when the gateway told them their hold is lost or uncertain.
 */

/** What one hold log shows. */
export interface HoldReport {
  /** Holds taken (ENTER/LEAD lines). */
  readonly acquisitions: number;
  /** Times a party entered while another still held. */
  readonly overlaps: number;
  /** Overlaps where the party still holding had not reported a loss before. */
  readonly overlapsWithoutLossReport: number;
  /** Fencing tokens (gateway holds) that did not rise above every earlier one. */
  readonly fencingViolations: number;
  readonly problems: readonly string[];
}

/** Checks a shared hold log; `enter`/`exit` are the words of the recipe (ENTER/EXIT, LEAD/UNLEAD). */
export function checkHolds(log: string, enter = 'ENTER', exit = 'EXIT'): HoldReport {
  const holders = new Map<string, { round: string; lost: boolean }>();
  const problems: string[] = [];
  let acquisitions = 0;
  let overlaps = 0;
  let unexcused = 0;
  let fencingViolations = 0;
  let maxToken = -1n;
  for (const [i, line] of log.split('\n').filter(Boolean).entries()) {
    const [what, id = '', round = '', token] = line.split(' ');
    if (what === enter) {
      acquisitions++;
      for (const [other, h] of holders) {
        if (other === id) continue;
        overlaps++;
        if (!h.lost) unexcused++;
        problems.push(`line ${i + 1}: ${id} entered while ${other} (round ${h.round}) held${h.lost ? ' (loss reported)' : ''}`);
      }
      holders.set(id, { round, lost: false });
      if (token !== undefined && /^\d+$/.test(token)) {
        const t = BigInt(token);
        if (t <= maxToken) {
          fencingViolations++;
          problems.push(`line ${i + 1}: ${id} got fencing token ${token} after ${maxToken}`);
        }
        if (t > maxToken) maxToken = t;
      }
    } else if (what === exit) {
      holders.delete(id);
    } else if (what === 'LOSS') {
      const h = holders.get(id);
      if (h) h.lost = true;
    }
  }
  return { acquisitions, overlaps, overlapsWithoutLossReport: unexcused, fencingViolations, problems };
}

/** CAS writers' outcome, checked against the node's final history. */
export interface WriteReport {
  readonly acknowledged: number;
  readonly reportedFailed: number;
  readonly unknown: number;
  /** Acknowledged writes missing from the final history. */
  readonly lostAcknowledged: number;
  /** Writes answered with an error that are in the final history anyway. */
  readonly failedButApplied: number;
}

/**
 * Every CAS write appends its unique token to the JSON array stored in the node (read, append,
 * set with the read version), so the final array is the history of every applied write.
 */
export function checkWrites(
  finalHistory: readonly string[],
  acked: ReadonlySet<string>,
  failed: ReadonlySet<string>,
  unknown: ReadonlySet<string>,
): WriteReport {
  const applied = new Set(finalHistory);
  let lost = 0;
  for (const t of acked) if (!applied.has(t)) lost++;
  let failedApplied = 0;
  for (const t of failed) if (applied.has(t)) failedApplied++;
  return { acknowledged: acked.size, reportedFailed: failed.size, unknown: unknown.size, lostAcknowledged: lost, failedButApplied: failedApplied };
}

/** One event a watch subscriber received (SSE), reduced to what the gap check needs. */
export interface SeenEvent {
  readonly type: string;
  /** The node's data version in the event, or -1 when it has none (deleted). */
  readonly version: number;
}

/**
 * A subscriber has a silent gap when its view went backwards without a `resync`/`current`
 * (events out of order), or when it did not end on the node's final version: one-shot watches
 * may coalesce changes (a version may be skipped), but the subscriber must never be left behind.
 */
export function silentGap(events: readonly SeenEvent[], finalVersion: number): string | undefined {
  let last = -1;
  for (const [i, e] of events.entries()) {
    const fresh = e.type === 'current' || e.type === 'resync';
    if (!fresh && e.version >= 0 && e.version < last) return `event ${i + 1} (${e.type}) went back from version ${last} to ${e.version}`;
    if (e.version >= 0) last = fresh ? e.version : Math.max(last, e.version);
  }
  if (last !== finalVersion) return `ended on version ${last}, the node is at ${finalVersion}`;
  return undefined;
}
