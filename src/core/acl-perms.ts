/** ZooKeeper ACL permissions as zkCli's letters: c create, d delete, r read, w write, a admin. */
import { invalidArgument } from './errors.js';

const BITS: ReadonlyArray<readonly [string, number]> = [
  ['c', 4],
  ['d', 8],
  ['r', 1],
  ['w', 2],
  ['a', 16],
];

/** `31` → `cdrwa`. */
export function permsToLetters(mask: number): string {
  return BITS.filter(([, bit]) => (mask & bit) !== 0)
    .map(([l]) => l)
    .join('');
}

/** `cdrwa` → `31`. @throws INVALID_ARGUMENT naming `field` for an unknown letter or none */
export function lettersToPerms(letters: string, field: string): number {
  let mask = 0;
  for (const ch of letters) {
    const bit = BITS.find(([l]) => l === ch)?.[1];
    if (bit === undefined) throw invalidArgument(field, `unknown permission ${JSON.stringify(ch)}; use letters of cdrwa`);
    mask |= bit;
  }
  if (mask === 0) throw invalidArgument(field, 'must grant at least one of cdrwa');
  return mask;
}
