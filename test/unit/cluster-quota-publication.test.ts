/**
 * What an instance of a cluster writes to ZooKeeper about its quota usage (docs/cluster.md
 * "Quotas across the cluster"): the board here records the values handed to it (the write to
 * ZooKeeper behind it is src/zk's, covered by cluster-quotas.test). A unit taken and given back
 * between two publications writes nothing (a busy lock wrote its instance's count at every
 * chance); a take still goes out at the usual pace, a release alone after RELEASE_DELAY_MS.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ClusterQuotas, PUBLISH_INTERVAL_MS, RELEASE_DELAY_MS, type UsageBoard } from '../../src/core/cluster/index.js';
import { TenantQuotas } from '../../src/core/index.js';
import { LIMIT_DEFAULTS } from '../../src/core/limits/limits.js';

class Board extends EventEmitter implements UsageBoard {
  readonly written: string[] = [];
  usage(): ReadonlyMap<string, unknown> {
    return new Map();
  }
  publishUsage(value: unknown): void {
    this.written.push(JSON.stringify(value));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('not within 10 s');
    await sleep(5);
  }
}

function instance(): { board: Board; quotas: TenantQuotas; looks: () => number } {
  const board = new Board();
  const quotas = new TenantQuotas('acme', { ...LIMIT_DEFAULTS });
  let looks = 0;
  const shared = new ClusterQuotas(board, () => (looks++, new Map([['acme', quotas.held()]])));
  quotas.share(shared);
  return { board, quotas, looks: () => looks };
}

describe('cluster quota publication', () => {
  test('a take is written; a unit taken and given back between two writes writes nothing', async () => {
    const { board, quotas } = instance();
    quotas.take('leases');
    await until(() => board.written.length === 1);
    assert.deepEqual(JSON.parse(board.written[0] as string), { tenants: { acme: { leases: 1 } } });
    // A lock cycle: taken and given back before the next publication.
    for (let i = 0; i < 20; i++) quotas.take('locks')();
    await sleep(PUBLISH_INTERVAL_MS + RELEASE_DELAY_MS + 200);
    assert.equal(board.written.length, 1, `written again: ${board.written.slice(1).join(' ')}`);
  });

  test('a release alone is written, after the release delay; a take after it is written with it', async () => {
    const { board, quotas } = instance();
    const releaseA = quotas.take('locks');
    quotas.take('locks');
    await until(() => board.written.length === 1);
    const released = Date.now();
    releaseA();
    await until(() => board.written.length === 2);
    assert.ok(Date.now() - released >= RELEASE_DELAY_MS - 5, 'a release waits for a take to cancel it out');
    assert.deepEqual(JSON.parse(board.written[1] as string), { tenants: { acme: { locks: 1 } } });
    // A unit given back, then another kind taken: written with the take, the release included.
    const releaseB = quotas.take('locks');
    await until(() => board.written.length === 3);
    releaseB();
    await sleep(PUBLISH_INTERVAL_MS * 2);
    quotas.take('leases');
    await until(() => board.written.length === 4);
    assert.deepEqual(JSON.parse(board.written[3] as string), { tenants: { acme: { leases: 1, locks: 1 } } });
  });

  test('a lock cycle that ends where the last write stands runs no publication', async () => {
    // On a busy lock each release and each take armed a 0 ms timer whose publication found
    // nothing to write: two timers per cycle, often a wake-up of their own.
    const { board, quotas, looks } = instance();
    let release = quotas.take('locks');
    await until(() => board.written.length === 1);
    await sleep(PUBLISH_INTERVAL_MS);
    const before = looks();
    for (let i = 0; i < 20; i++) {
      release();
      await sleep(2);
      release = quotas.take('locks');
      await sleep(2);
    }
    assert.ok(looks() - before <= 1, `publications run: ${looks() - before}`);
    // A release that stays is still written after the delay.
    release();
    await until(() => board.written.length === 2);
    assert.deepEqual(JSON.parse(board.written[1] as string), { tenants: {} });
  });
});
