/** ACL entries in JSON: permissions as zkCli's letters (c create, d delete, r read, w write, a admin). */
import { invalidArgument, type AclEntry } from '../../core/index.js';

const BITS: ReadonlyArray<readonly [string, number]> = [
  ['c', 4],
  ['d', 8],
  ['r', 1],
  ['w', 2],
  ['a', 16],
];

export interface AclJson {
  scheme: string;
  id: string;
  perms: string;
}

export function permsToLetters(mask: number): string {
  return BITS.filter(([, bit]) => (mask & bit) !== 0)
    .map(([l]) => l)
    .join('');
}

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

export function aclToJson(acl: readonly AclEntry[]): AclJson[] {
  return acl.map((a) => ({ scheme: a.scheme, id: a.id, perms: permsToLetters(a.perms) }));
}

export function aclFromJson(acl: readonly AclJson[]): AclEntry[] {
  return acl.map((a, i) => ({ scheme: a.scheme, id: a.id, perms: lettersToPerms(a.perms, `acl.${i}.perms`) }));
}
