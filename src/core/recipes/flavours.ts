/**
 * Node naming and queue ordering of the libraries zkgate interoperates with, copied exactly
 * (quirks included) from Curator 5.4 and Kazoo 2.8; see test/peers/README.md. A lock path is
 * shared safely only by contenders of one flavour: stock Curator and Kazoo do not see each
 * other's nodes in the same way, so they do not exclude each other.
 */
import { randomUUID } from 'node:crypto';

export type LockFlavour = 'curator' | 'kazoo';
export const LOCK_FLAVOURS: readonly LockFlavour[] = ['curator', 'kazoo'];

/** How one library names its contender nodes and orders a parent's children into a queue. */
export interface QueueFlavour {
  readonly name: LockFlavour;
  /** A fresh unique name prefix; ZooKeeper appends the 10-digit sequence. */
  newPrefix(): string;
  /** The children that count as contenders, in queue order (holder first). */
  order(children: readonly string[]): string[];
}

/** Curator's `StandardLockInternalsDriver.standardFixForSorting`: text after the LAST marker, else the whole name. */
export function curatorSortKey(name: string, marker: string): string {
  const i = name.lastIndexOf(marker);
  return i >= 0 ? name.slice(i + marker.length) : name;
}

function compareUtf16(a: string, b: string): number {
  // Java's String.compareTo compares UTF-16 code units, as JS's relational operators do.
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Curator's InterProcessMutex (`marker` = `lock-`), LeaderLatch (`latch-`), InterProcessSemaphoreV2's
 * leases (`lease-`) or a read-write lock's halves (`__READ__`, `__WRIT__`, with their shared
 * `sortKey`): node `_c_<uuid with dashes>-<marker><seq>`; ALL children count, stable-sorted by
 * `sortKey` (default `curatorSortKey` with `marker`).
 */
export function curatorFlavour(marker: string, sortKey: (name: string) => string = (name) => curatorSortKey(name, marker)): QueueFlavour {
  return {
    name: 'curator',
    newPrefix: () => `_c_${randomUUID()}-${marker}`,
    order: (children) =>
      children
        .map((name) => ({ name, key: sortKey(name) }))
        .sort((a, b) => compareUtf16(a.key, b.key)) // Array.prototype.sort is stable, like Collections.sort
        .map((e) => e.name),
  };
}

/** Kazoo's `Lock` contender pattern: `re.search(r"(?:__lock__)(-?\d{10})$", name)`. */
const KAZOO_LOCK = /(?:__lock__)(-?\d{10})$/;

/**
 * Kazoo's `Lock`: node `<uuid4 hex>__lock__<seq>`; only children matching `__lock__` + sequence
 * at the end count, sorted by the captured sequence string (the uuid never matters).
 */
export const kazooFlavour: QueueFlavour = {
  name: 'kazoo',
  newPrefix: () => `${randomUUID().replace(/-/g, '')}__lock__`,
  order: (children) =>
    children
      .flatMap((name) => {
        const m = KAZOO_LOCK.exec(name);
        return m ? [{ name, key: m[1] as string }] : [];
      })
      .sort((a, b) => compareUtf16(a.key, b.key))
      .map((e) => e.name),
};

/** The lock flavour by name. */
export function lockFlavour(name: LockFlavour): QueueFlavour {
  return name === 'kazoo' ? kazooFlavour : curatorFlavour('lock-');
}
