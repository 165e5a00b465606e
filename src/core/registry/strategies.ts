/**
 * Instance selection, as Curator's `ProviderStrategy` implementations choose:
 * - `round_robin`: each caller walks the instances in id order (Curator's `RoundRobinStrategy`
 *   keeps one counter per provider; here one per caller and service);
 * - `random`: any instance, uniformly;
 * - `sticky`: the caller keeps the instance it got last while that instance is still offered,
 *   else gets the next one round-robin (Curator's `StickyStrategy` over round-robin).
 * State lives in this gateway instance's memory, bounded (least recently used callers are
 * forgotten first); behind a load balancer each gateway instance keeps its own.
 */
import { randomInt } from 'node:crypto';

export const STRATEGIES = ['round_robin', 'random', 'sticky'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** Callers remembered (per gateway process) before the least recently used is forgotten. */
export const MAX_CALLERS = 10_000;

interface CallerState {
  next: number;
  sticky?: string;
}

export class Picker {
  private readonly callers = new Map<string, CallerState>();

  constructor(private readonly maxCallers = MAX_CALLERS) {}

  /**
   * Chooses one of `ids` (sorted, non-empty) for `caller` (a key naming tenant, service and caller).
   * @returns an element of `ids`
   */
  pick(strategy: Strategy, caller: string, ids: readonly string[]): string {
    if (strategy === 'random') return ids[randomInt(ids.length)] as string;
    const state = this.state(caller);
    if (strategy === 'sticky' && state.sticky !== undefined && ids.includes(state.sticky)) return state.sticky;
    const id = ids[state.next % ids.length] as string;
    state.next = (state.next + 1) % Number.MAX_SAFE_INTEGER;
    if (strategy === 'sticky') state.sticky = id;
    return id;
  }

  private state(caller: string): CallerState {
    let s = this.callers.get(caller);
    if (s) {
      this.callers.delete(caller); // re-inserted: Map order is recency order
    } else {
      s = { next: 0 };
      while (this.callers.size >= this.maxCallers) this.callers.delete(this.callers.keys().next().value as string);
    }
    this.callers.set(caller, s);
    return s;
  }
}
