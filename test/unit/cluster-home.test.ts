/**
 * The tenant's home instance (docs/cluster.md "Lease placement"): a rendezvous hash, so every
 * instance computes the same home from the same members, an instance leaving moves only the
 * tenants homed on it, one joining takes only the tenants it becomes the home of, and tenants
 * spread over the instances.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homeOf } from '../../src/core/cluster/cluster.js';

const tenants = Array.from({ length: 3000 }, (_, i) => `tenant-${i}`);
const ids = ['gw-a', 'gw-b', 'gw-c'];

test('the home does not depend on the order the members are listed in', () => {
  for (const t of tenants.slice(0, 200)) assert.equal(homeOf(t, ids), homeOf(t, [...ids].reverse()));
});

test('a member leaving moves only its own tenants; one joining takes tenants only for itself', () => {
  for (const t of tenants) {
    const home = homeOf(t, ids) as string;
    for (const gone of ids.filter((i) => i !== home)) assert.equal(homeOf(t, ids.filter((i) => i !== gone)), home);
    const joined = homeOf(t, [...ids, 'gw-d']);
    assert.ok(joined === home || joined === 'gw-d');
  }
});

test('tenants spread over the members (each within 30-37% of 3000)', () => {
  const count = new Map<string, number>();
  for (const t of tenants) count.set(homeOf(t, ids) as string, (count.get(homeOf(t, ids) as string) ?? 0) + 1);
  for (const id of ids) assert.ok((count.get(id) ?? 0) > 900 && (count.get(id) ?? 0) < 1110, `${id}: ${count.get(id)}`);
  assert.equal(homeOf('x', []), undefined);
});
