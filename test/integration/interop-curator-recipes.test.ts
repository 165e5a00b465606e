/**
 * Interop with Curator 5.4's InterProcessSemaphoreV2 (and InterProcessReadWriteLock) on the same
 * paths: Curator clients in ONE JVM (test/peers/CuratorRecipesPeer.java, commands on stdin) and
 * gateway clients append ENTER/EXIT lines to one O_APPEND log; the checker replays it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnClean } from '../../src/zk/index.js';
import { projectFile } from '../../src/project-files.js';
import { appendLine } from '../support/peers.js';
import type { RestClient } from '../support/openapi.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

/** One JVM with Curator, serving commands line by line (see the peer's header). */
class CuratorJvm {
  private out = '';
  private err = '';
  private constructor(private readonly proc: ChildProcess) {
    proc.stdout?.on('data', (b: Buffer) => (this.out += b.toString()));
    proc.stderr?.on('data', (b: Buffer) => (this.err += b.toString()));
  }

  static async start(connect: string): Promise<CuratorJvm> {
    const cp = execFileSync('sh', [projectFile('test/peers/classpath.sh')], { encoding: 'utf8' }).trim();
    const proc = spawnClean('java', ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', cp, projectFile('test/peers/CuratorRecipesPeer.java'), connect], {
      env: { ...process.env, PEER_WAIT_MS: '60000' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const jvm = new CuratorJvm(proc);
    await jvm.line((l) => l === 'READY', 60_000);
    return jvm;
  }

  /** Sends a command; resolves once its clients are connected (`STARTED`) with the promise of its end. */
  async run(command: string): Promise<Promise<void>> {
    this.out = '';
    this.proc.stdin?.write(`${command}\n`);
    const first = await this.line((l) => l === 'STARTED' || l.startsWith('FAIL') || l === 'DONE', 60_000);
    if (first.startsWith('FAIL')) throw new Error(`curator: ${first}`);
    return this.line((l) => l === 'DONE' || l.startsWith('FAIL'), 120_000).then((l) => {
      if (l !== 'DONE') throw new Error(`curator: ${l}`);
    });
  }

  /** Runs a command that answers lines, then END. */
  async query(command: string): Promise<string[]> {
    this.out = '';
    this.proc.stdin?.write(`${command}\n`);
    await this.line((l) => l === 'END' || l.startsWith('FAIL'), 60_000);
    const lines = this.out.split('\n').filter(Boolean);
    return lines.slice(0, lines.indexOf('END'));
  }

  private line(match: (l: string) => boolean, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const tick = (): void => {
        const hit = this.out.split('\n').find(match);
        if (hit !== undefined) return resolve(hit);
        if (this.proc.exitCode !== null) return reject(new Error(`curator jvm exited ${this.proc.exitCode}: ${this.err}`));
        if (Date.now() > deadline) return reject(new Error(`curator jvm: no answer within ${timeoutMs} ms; stderr: ${this.err}`));
        setTimeout(tick, 20);
      };
      tick();
    });
  }

  close(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

/** Most permits held at once, rounds per party and problems, from ENTER/EXIT `<id> <round> <qty>` lines. */
export function checkPermits(log: string, max: number): { peak: number; rounds: Record<string, number>; problems: string[] } {
  let held = 0;
  let peak = 0;
  const rounds: Record<string, number> = {};
  const problems: string[] = [];
  for (const [i, line] of log.split('\n').filter(Boolean).entries()) {
    const [what, id, , qty] = line.split(' ') as [string, string, string, string];
    if (what === 'ENTER') held += Number(qty);
    else if (what === 'EXIT') {
      held -= Number(qty);
      rounds[id] = (rounds[id] ?? 0) + 1;
    } else problems.push(`line ${i + 1}: unexpected ${line}`);
    peak = Math.max(peak, held);
    if (held > max) problems.push(`line ${i + 1}: ${held} permits held (max ${max}) after ${line}`);
  }
  return { peak, rounds, problems };
}

/**
 * Replays RENTER/REXIT/WENTER/WEXIT `<id> <round>` lines: no reader while a writer holds, never
 * two writers; also the most readers seen at once.
 */
export function checkReadWrite(log: string): { rounds: Record<string, number>; peakReaders: number; writes: number; problems: string[] } {
  const readers = new Set<string>();
  let writer: string | null = null;
  let peakReaders = 0;
  let writes = 0;
  const rounds: Record<string, number> = {};
  const problems: string[] = [];
  for (const [i, line] of log.split('\n').filter(Boolean).entries()) {
    const [what, id] = line.split(' ') as [string, string];
    const at = `line ${i + 1} (${line})`;
    if (what === 'RENTER') {
      if (writer) problems.push(`${at}: reader entered while writer ${writer} held`);
      readers.add(id);
      peakReaders = Math.max(peakReaders, readers.size);
    } else if (what === 'WENTER') {
      if (writer) problems.push(`${at}: writer entered while writer ${writer} held`);
      if (readers.size > 0) problems.push(`${at}: writer entered while ${readers.size} readers held`);
      writer = id;
      writes++;
    } else if (what === 'REXIT' && readers.delete(id)) rounds[id] = (rounds[id] ?? 0) + 1;
    else if (what === 'WEXIT' && writer === id) {
      writer = null;
      rounds[id] = (rounds[id] ?? 0) + 1;
    } else problems.push(`${at}: unexpected`);
  }
  return { rounds, peakReaders, writes, problems };
}

/** One gateway client taking the read or write lock `rounds` times, logging like the Curator clients. */
async function gatewayRw(rest: RestClient, o: { path: string; mode: 'read' | 'write'; rounds: number; holdMs: number; log: string; id: string }): Promise<void> {
  const lease = ((await rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
  const tag = o.mode === 'read' ? 'R' : 'W';
  for (let round = 1; round <= o.rounds; round++) {
    const got = await rest.json('POST', `/v1/rwlocks${o.path}`, { leaseId: lease, mode: o.mode, waitMs: 60_000, data: o.id });
    if (got.status !== 200) throw new Error(`${o.id} round ${round}: ${got.status} ${JSON.stringify(got.body)}`);
    appendLine(o.log, `${tag}ENTER ${o.id} ${round}`);
    await new Promise((r) => setTimeout(r, o.holdMs));
    appendLine(o.log, `${tag}EXIT ${o.id} ${round}`);
    const left = await rest.json('DELETE', `/v1/rwlocks${o.path}`, undefined, { query: { leaseId: lease, node: (got.body as { node: string }).node } });
    if (left.status !== 200) throw new Error(`${o.id} round ${round}: release ${left.status}`);
    await rest.json('POST', `/v1/leases/${lease}/keepalive`);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 6)));
  }
  await rest.json('DELETE', `/v1/leases/${lease}`);
}

/** One gateway client taking `qty` permits `rounds` times, logging like the Curator clients. */
async function gatewayPermits(rest: RestClient, o: { path: string; n: Record<string, unknown>; qty: number; rounds: number; holdMs: number; log: string; id: string }): Promise<void> {
  const lease = ((await rest.json('POST', '/v1/leases', { ttlMs: 30_000 })).body as { id: string }).id;
  for (let round = 1; round <= o.rounds; round++) {
    const got = await rest.json('POST', `/v1/semaphores${o.path}`, { leaseId: lease, ...o.n, permits: o.qty, waitMs: 60_000, data: o.id });
    if (got.status !== 200) throw new Error(`${o.id} round ${round}: ${got.status} ${JSON.stringify(got.body)}`);
    appendLine(o.log, `ENTER ${o.id} ${round} ${o.qty}`);
    await new Promise((r) => setTimeout(r, o.holdMs));
    appendLine(o.log, `EXIT ${o.id} ${round} ${o.qty}`);
    const left = await rest.json('DELETE', `/v1/semaphores${o.path}`, undefined, { query: { leaseId: lease } });
    if (left.status !== 200) throw new Error(`${o.id} round ${round}: release ${left.status}`);
    await rest.json('POST', `/v1/leases/${lease}/keepalive`);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 6)));
  }
  await rest.json('DELETE', `/v1/leases/${lease}`);
}

describe('interop with Curator 5.4 (InterProcessSemaphoreV2, InterProcessReadWriteLock), one JVM', () => {
  const env = zkAndGateway();
  let jvm: CuratorJvm;
  let dir: string;
  before(async () => {
    jvm = await CuratorJvm.start(env.zk.connectString);
    dir = mkdtempSync(join(tmpdir(), 'zkgate-sem-'));
  });
  after(() => {
    jvm?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ROUNDS = 12;

  const semaphoreRun = async (name: string, max: number, curatorN: string, gatewayN: Record<string, unknown>): Promise<ReturnType<typeof checkPermits>> => {
    const path = uniquePath(name);
    const log = join(dir, `${name}.log`);
    writeFileSync(log, '');
    const curator = await jvm.run(`semaphore ${path} ${curatorN} 3 ${ROUNDS} 1 15 ${log} curator`);
    const gateway = [1, 2].map((q, i) => gatewayPermits(env.g.rest, { path, n: gatewayN, qty: q, rounds: ROUNDS, holdMs: 15, log, id: `gateway-${i + 1}` }));
    await Promise.all([curator, ...gateway]);
    return checkPermits(readFileSync(log, 'utf8'), max);
  };

  test('interop › semaphore holders never exceed N with Curator and gateway participants (N by convention)', async (t) => {
    const report = await semaphoreRun('sem-max', 3, '3', { maxPermits: 3 });
    t.diagnostic(`semaphore N=3: peak ${report.peak} permits held, rounds ${JSON.stringify(report.rounds)}, problems ${report.problems.length}`);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.rounds, { 'curator-1': ROUNDS, 'curator-2': ROUNDS, 'curator-3': ROUNDS, 'gateway-1': ROUNDS, 'gateway-2': ROUNDS });
    assert.ok(report.peak >= 2, 'permits were shared');
  });

  test('interop › semaphore with N from a Curator SharedCount the gateway seeded: holders never exceed it', async (t) => {
    const countPath = `${uniquePath('sem-count')}/n`;
    // The gateway seeds the count (2) with a try on a throwaway semaphore; Curator's SharedCount reads it.
    const lease = ((await env.g.rest.json('POST', '/v1/leases', { ttlMs: 10_000 })).body as { id: string }).id;
    assert.equal((await env.g.rest.json('POST', `/v1/semaphores${uniquePath('seed')}`, { leaseId: lease, countPath, maxPermits: 2 })).status, 200);
    await env.g.rest.json('DELETE', `/v1/leases/${lease}`);
    const report = await semaphoreRun('sem-shared', 2, `count=${countPath}`, { countPath });
    t.diagnostic(`semaphore SharedCount N=2: peak ${report.peak} permits held, rounds ${JSON.stringify(report.rounds)}, problems ${report.problems.length}`);
    assert.deepEqual(report.problems, []);
    assert.equal(report.peak, 2);
  });

  test('interop › read-write lock: no reader holds while a writer holds and no two writers hold, across Curator and gateway clients', async (t) => {
    const path = uniquePath('rw');
    const log = join(dir, 'rw.log');
    writeFileSync(log, '');
    const curator = await jvm.run(`rwlock ${path} 2 1 ${ROUNDS} 10 ${log} curator`);
    const gateway = [
      gatewayRw(env.g.rest, { path, mode: 'read', rounds: ROUNDS, holdMs: 10, log, id: 'gateway-r1' }),
      gatewayRw(env.g.rest, { path, mode: 'read', rounds: ROUNDS, holdMs: 10, log, id: 'gateway-r2' }),
      gatewayRw(env.g.rest, { path, mode: 'write', rounds: ROUNDS, holdMs: 10, log, id: 'gateway-w1' }),
    ];
    await Promise.all([curator, ...gateway]);
    const report = checkReadWrite(readFileSync(log, 'utf8'));
    t.diagnostic(`rwlock: ${report.writes} writes, peak ${report.peakReaders} readers at once, rounds ${JSON.stringify(report.rounds)}, problems ${report.problems.length}`);
    assert.deepEqual(report.problems, []);
    const all = ['curator-r1', 'curator-r2', 'curator-w1', 'gateway-r1', 'gateway-r2', 'gateway-w1'];
    assert.deepEqual(Object.fromEntries(all.map((id) => [id, report.rounds[id]])), Object.fromEntries(all.map((id) => [id, ROUNDS])));
    assert.ok(report.peakReaders >= 2, 'readers shared the lock');
  });

  test("interop › Curator's read-write sort lists gateway and Curator nodes in the gateway's order", async () => {
    const path = uniquePath('rw-order');
    const ids: string[] = [];
    for (const mode of ['read', 'write', 'read', 'write']) {
      const lease = ((await env.g.rest.json('POST', '/v1/leases', { ttlMs: 10_000 })).body as { id: string }).id;
      ids.push(lease);
      // The first read holds; the rest queue (each ends with 410 when its lease is revoked below).
      void env.g.rest.json('POST', `/v1/rwlocks${path}`, { leaseId: lease, mode, waitMs: 20_000 }).catch(() => undefined);
      await eventually(async () => ((await env.g.rest.json('GET', `/v1/rwlocks${path}`)).body as { queue: unknown[] }).queue?.length === ids.length, 10_000, 'the node');
    }
    const gateway = ((await env.g.rest.json('GET', `/v1/rwlocks${path}`)).body as { queue: { node: string }[] }).queue.map((q) => q.node.split('/').at(-1));
    assert.equal(gateway.length, 4);
    assert.deepEqual(await jvm.query(`children ${path} rw`), gateway);
    for (const id of ids) await env.g.rest.json('DELETE', `/v1/leases/${id}`);
  });

  test("interop › Curator's own sort lists the gateway's lease nodes in the gateway's order", async () => {
    const path = uniquePath('sem-order');
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const lease = ((await env.g.rest.json('POST', '/v1/leases', { ttlMs: 10_000 })).body as { id: string }).id;
      ids.push(lease);
      assert.equal((await env.g.rest.json('POST', `/v1/semaphores${path}`, { leaseId: lease, maxPermits: 5 })).status, 200);
    }
    const gateway = ((await env.g.rest.json('GET', `/v1/semaphores${path}`)).body as { holders: { node: string }[] }).holders.map((h) => h.node.split('/').at(-1));
    assert.deepEqual(await jvm.query(`children ${path}/leases lease-`), gateway);
    for (const id of ids) await env.g.rest.json('DELETE', `/v1/leases/${id}`);
  });
});
