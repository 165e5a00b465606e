/**
 * Interop with Curator 5.4 x-discovery: one Curator `ServiceDiscovery` JVM (test/peers/RegistryPeer.java)
 * and the gateway on one base path. Curator sees gateway-registered instances (address, port,
 * uriSpec, payload) and the gateway lists Curator-registered ones; a provider that dies
 * disappears within its bound: a gateway provider's process SIGKILLed stops its keepalives and
 * its instance goes within the lease TTL; the Curator JVM SIGKILLed loses its session and its
 * instance goes within the session timeout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { projectFile } from '../../src/project-files.js';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';

const execAsync = promisify(execFile);
const SESSION_MS = 4000;
const LEASE_TTL_MS = 3000;

interface Instance {
  id: string;
  address: string | null;
  port: number | null;
  payload: unknown;
  uri: string | null;
  serviceType: string;
}

/** The Curator peer: one command at a time, its output lines up to END. */
class CuratorDiscovery {
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.waiter?.();
    });
  }
  private async line(timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error('curator peer: no answer');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 200);
      });
    }
    return this.lines.shift() as string;
  }
  async ready(): Promise<void> {
    assert.equal(await this.line(90_000), 'READY');
  }
  async run(cmd: string): Promise<string[]> {
    this.proc.stdin!.write(`${cmd}\n`);
    const out: string[] = [];
    for (let l = await this.line(); l !== 'END'; l = await this.line()) out.push(l);
    assert.ok(!out.some((l) => l.startsWith('ERR')), out.join('\n'));
    return out;
  }
}

describe('interop with Curator 5.4 x-discovery ServiceDiscovery', () => {
  const env = zkAndGateway();
  const base = uniquePath('discovery');
  let curator: CuratorDiscovery;
  const q = { query: { base } };
  const rest = () => env.g.rest;
  const list = async (service: string): Promise<Instance[]> => ((await rest().json('GET', `/v1/services/${service}`, undefined, q)).body as { instances: Instance[] }).instances;
  const lease = (ttlMs: number): Promise<string> => eventually(async () => ((await rest().json('POST', '/v1/leases', { ttlMs })).body as { id?: string }).id, 20_000, 'a lease');

  before(async () => {
    const cp = (await execAsync('sh', [projectFile('test/peers/classpath.sh')], { encoding: 'utf8' })).stdout.trim();
    const jars = ['curator-x-discovery', 'jackson-databind', 'jackson-core', 'jackson-annotations'].map((j) => `/usr/share/java/${j}.jar`).join(':');
    const proc = spawn('java', ['-cp', `${cp}:${jars}`, projectFile('test/peers/RegistryPeer.java'), env.zk.connectString, base, String(SESSION_MS)], { stdio: ['pipe', 'pipe', 'inherit'] });
    curator = new CuratorDiscovery(proc);
    await curator.ready();
  });
  after(() => {
    if (curator?.proc.exitCode === null) curator.proc.kill('SIGKILL');
  });

  test('interop › Curator sees gateway-registered instances, with address, port, uriSpec and payload', async () => {
    const l = await lease(30_000);
    const r = await rest().json('POST', '/v1/services/orders/instances', { leaseId: l, id: 'gw-1', address: '10.1.0.1', port: 8080, uriSpec: '{scheme}://{address}:{port}/api', payload: { zone: 'eu' } }, q);
    assert.equal(r.status, 201);
    await rest().json('POST', '/v1/services/orders/instances', { leaseId: l, id: 'gw-2', address: '10.1.0.2', sslPort: 8443, uriSpec: '{scheme}://{address}:{ssl-port}' }, q);
    assert.deepEqual(await curator.run('names'), ['orders']);
    const seen = (await curator.run('list orders')).sort();
    assert.deepEqual(seen, ['gw-1 10.1.0.1 8080 http://10.1.0.1:8080/api {"zone":"eu"}', 'gw-2 10.1.0.2 null https://10.1.0.2:8443 null']);
    await rest().json('DELETE', `/v1/leases/${l}`);
    assert.deepEqual(await curator.run('list orders'), [], 'the lease ended: Curator sees no instance');
  });

  test('interop › the gateway lists, gets and picks Curator-registered instances', async () => {
    await curator.run('register billing c-1 10.2.0.1 9000');
    const [inst] = await list('billing');
    assert.deepEqual(
      { id: inst?.id, address: inst?.address, port: inst?.port, uri: inst?.uri, serviceType: inst?.serviceType, payload: inst?.payload },
      { id: 'c-1', address: '10.2.0.1', port: 9000, uri: 'http://10.2.0.1:9000/c', serviceType: 'DYNAMIC', payload: { '@class': 'java.util.HashMap', peer: 'curator' } },
    );
    assert.equal(((await rest().json('GET', '/v1/services/billing/pick', undefined, q)).body as Instance).id, 'c-1');
    // A gateway instance beside Curator's: each side sees both.
    const l = await lease(30_000);
    await rest().json('POST', '/v1/services/billing/instances', { leaseId: l, id: 'gw-9', address: '10.2.0.9', port: 9000 }, q);
    assert.deepEqual((await list('billing')).map((i) => i.id), ['c-1', 'gw-9']);
    assert.deepEqual((await curator.run('list billing')).map((s) => s.split(' ')[0]).sort(), ['c-1', 'gw-9']);
    // Curator's id is not the gateway's to update.
    assert.equal((await rest().json('PUT', '/v1/services/billing/instances/c-1', { leaseId: l, port: 1 }, q)).status, 409);
    await curator.run('unregister billing c-1');
    // Another client's change: a followed service's set holds it once the watch notification
    // arrives (docs/registry.md, "Picks from memory"); sync=true reads ZooKeeper after a sync.
    const synced = (await rest().json('GET', '/v1/services/billing', undefined, { query: { ...q.query, sync: 'true' } })).body as { instances: Instance[] };
    assert.deepEqual(synced.instances.map((i) => i.id), ['gw-9']);
    await eventually(async () => (await list('billing')).map((i) => i.id).join() === 'gw-9', 10_000, 'the followed set to drop c-1');
    await rest().json('DELETE', `/v1/leases/${l}`);
  });

  test('interop › a SIGKILLed provider disappears within its bound: a gateway provider within its lease TTL, Curator within its session timeout', async (t) => {
    // A provider process that keeps its lease alive with curl, as a PHP or shell provider would.
    const l = await lease(LEASE_TTL_MS);
    await rest().json('POST', '/v1/services/search/instances', { leaseId: l, id: 'gw-k', address: '10.3.0.1', port: 80 }, q);
    const keepalive = spawn('/bin/sh', ['-c', `while :; do curl -s -o /dev/null -XPOST ${env.g.base}/v1/leases/${l}/keepalive; sleep 0.5; done`], { stdio: 'ignore' });
    await curator.run('register search c-k 10.3.0.2 80');
    await new Promise((r) => setTimeout(r, LEASE_TTL_MS + 1000)); // outlives one TTL: the keepalives work
    assert.deepEqual((await list('search')).map((i) => i.id), ['c-k', 'gw-k']);

    keepalive.kill('SIGKILL');
    const killedGw = Date.now();
    await eventually(async () => !(await list('search')).some((i) => i.id === 'gw-k'), LEASE_TTL_MS + 10_000, 'the gateway provider to go');
    const gwMs = Date.now() - killedGw;
    assert.deepEqual((await curator.run('list search')).map((s) => s.split(' ')[0]), ['c-k'], 'Curator sees it gone too');

    curator.proc.kill('SIGKILL');
    const killedCurator = Date.now();
    await eventually(async () => (await list('search')).length === 0, SESSION_MS * 2 + 10_000, "the Curator provider's session to expire");
    const curatorMs = Date.now() - killedCurator;
    t.diagnostic(`gateway provider gone ${gwMs} ms after SIGKILL (lease TTL ${LEASE_TTL_MS} ms); Curator provider gone ${curatorMs} ms after SIGKILL (session timeout ${SESSION_MS} ms)`);
    // The lease counts from the last keepalive (at most 0.5 s before the kill), plus the delete itself.
    assert.ok(gwMs <= LEASE_TTL_MS + 1500, `gateway provider gone within its lease TTL (${gwMs} ms)`);
  });
});
