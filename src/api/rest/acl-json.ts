/** ACL entries in JSON: permissions as zkCli's letters (c create, d delete, r read, w write, a admin). */
import { lettersToPerms, permsToLetters, type AclEntry } from '../../core/index.js';

export interface AclJson {
  scheme: string;
  id: string;
  perms: string;
}

export function aclToJson(acl: readonly AclEntry[]): AclJson[] {
  return acl.map((a) => ({ scheme: a.scheme, id: a.id, perms: permsToLetters(a.perms) }));
}

export function aclFromJson(acl: readonly AclJson[]): AclEntry[] {
  return acl.map((a, i) => ({ scheme: a.scheme, id: a.id, perms: lettersToPerms(a.perms, `acl.${i}.perms`) }));
}
