/**
 * Loss is honest across a handoff (issue 11, docs/cluster.md "Loss is honest"): an instance hands
 * its leases to a successor and exits while a forwarded call to it is open. The caller's call is
 * cut after it went out ('failed'), and the ping that follows is refused; the lease is not lost
 * (the successor holds it), so the caller must not answer `410 LEASE_LOST instance_gone` but
 * `503 UNAVAILABLE` (`reason: handoff`, `outcome: unknown`), and the client's retry reaches the
 * successor. Before the fix only a refused call read the handoff records again.
 *
 * Real parts: ZooKeeper from the harness, two gateways (alpha, the successor; beta, the caller).
 * The draining instance ("gamma") is played by the test with the channel's own code: a member
 * record in ZooKeeper whose address is the test's server — which takes the forwarded call as a
 * frame (FrameServer) or, refusing the upgrade as an older version does, as a POST — and a real
 * handoff: a ZooKeeper session detached and sent to alpha's `/cluster/v1/adopt` with the lease,
 * after which alpha holds it and writes the handoff record. Then the server closes its listener
 * and cuts the connection that carried the call, without answering.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { eventually, startTestGateway, type Problem, type TestGateway } from '../support/test-gateway.js';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { LeaseIds } from '../../src/core/cluster/lease-ids.js';
import { CALL_PATH, ChannelClient, ChannelVerifier, readBody, readJson, secretKey } from '../../src/core/cluster/channel.js';
import { FrameServer } from '../../src/core/cluster/frames.js';
import { NativeZkClient } from '../../src/zk/index.js';

const SECRET = 'handoff-cut-test-secret-0123456789abcdef';

interface Ready {
  cluster?: { members: { id: string; address: string; self: boolean }[] };
}

/** The draining instance as the test plays it. */
interface Draining {
  readonly leaseId: string;
  /** Resolves with the forwarded call's body once it arrived, was handed over, and its connection cut. */
  readonly cut: Promise<string>;
  close(): void;
}

describe('cluster › a call cut by an instance that handed its leases over and exited', () => {
  let zk: ZkStandalone;
  let alpha: TestGateway;
  let beta: TestGateway;
  let registry: NativeZkClient;
  const INSTANCES = `/zkgate-handoff-cut/${process.pid}`;
  const gw = (id: string): Promise<TestGateway> =>
    startTestGateway(zk.connectString, {
      instanceId: id,
      cluster: { secret: SECRET, forwardTimeoutMs: 15_000, leasePlacement: 'local' },
      instances: { path: INSTANCES },
      tenants: [{ name: 'default', sessionTimeoutMs: 8000 }],
    });
  const connected = async (c: NativeZkClient): Promise<NativeZkClient> => (await new Promise((r) => c.once('connect', r)), c);

  before(async () => {
    zk = await startZkServer();
    alpha = await gw('alpha');
    beta = await gw('beta');
    registry = await connected(new NativeZkClient({ connect: zk.connectString, sessionTimeoutMs: 8000 }));
  });
  after(async () => {
    registry?.close();
    await beta?.close();
    await alpha?.close();
    await zk?.close();
  });

  /**
   * Registers instance `id` at a server of the test and mints one of its lease ids. When a
   * forwarded call arrives (as a frame, or as a POST when `frames` is false), the instance hands
   * the lease — with a live ZooKeeper session, detached first — to alpha, stops listening, and
   * cuts the call's connection without an answer.
   */
  async function draining(id: string, frames: boolean): Promise<Draining> {
    const incarnation = randomBytes(4).toString('hex');
    const leaseId = new LeaseIds(SECRET, id, incarnation).mint();
    const session = await connected(new NativeZkClient({ connect: zk.connectString, sessionTimeoutMs: 8000 }));
    const alphaAddress = ((await alpha.rest.json('GET', '/readyz')).body as Ready).cluster?.members.find((m) => m.self)?.address as string;
    const channel = new ChannelClient(SECRET, id);
    const sockets = new Set<Socket>();
    let server: Server | undefined;
    let cutWith: (body: string) => void = () => undefined;
    const cut = new Promise<string>((r) => (cutWith = r));
    const handOverAndCut = async (body: string): Promise<void> => {
      const creds = { sessionId: session.sessionId, password: session.sessionPassword };
      assert.ok(session.detach(), 'the binding detaches sessions (patches/zookeeper+7.3.0.patch)');
      const res = await channel.open(alphaAddress, '/cluster/v1/adopt', { tenant: 'default', ...creds, leases: [{ id: leaseId, owner: 'anonymous', ttlMs: 30_000, owned: [] }] }, { timeoutMs: 15_000 });
      assert.deepEqual(await readJson(res), { ok: { adopted: 1, lost: 0 } });
      // Exits: the listener first (the caller's ping is refused), then the open connection.
      server?.close();
      for (const s of sockets) s.destroy();
      cutWith(body);
    };
    const fs = new FrameServer(secretKey(SECRET), new ChannelVerifier(SECRET), (body) => handOverAndCut(body), () => undefined);
    server = createServer((req: IncomingMessage, res) => {
      void readBody(req).then((body) => {
        if (!frames && req.url === CALL_PATH) return handOverAndCut(body ?? '');
        res.writeHead(404).end();
      });
    });
    server.on('connection', (s: Socket) => (sockets.add(s), s.once('close', () => sockets.delete(s))));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // An older version answers the upgrade 401: the caller sends its calls as POSTs.
      if (frames) fs.upgrade(req, socket, head);
      else socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const record = { id, incarnation, address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, version: '0', startedAt: new Date().toISOString(), host: 'test', pid: process.pid };
    await registry.create(`${INSTANCES}/${id}`, Buffer.from(JSON.stringify(record)), 'ephemeral');
    await eventually(async () => ((await beta.rest.json('GET', '/readyz')).body as Ready).cluster?.members.some((m) => m.id === id), 5000, `beta to see ${id}`);
    return {
      leaseId,
      cut,
      close: () => {
        server?.close();
        for (const s of sockets) s.destroy();
        channel.close();
        session.close();
      },
    };
  }

  for (const frames of [true, false]) {
    test(`${frames ? 'a frame' : 'a POST (peer of an older version)'}: 503 UNAVAILABLE handoff / unknown, not 410 instance_gone; the retry reaches the successor`, async () => {
      const d = await draining(frames ? 'gamma' : 'delta', frames);
      try {
        const r = (await beta.rest.json('POST', `/v1/leases/${d.leaseId}/keepalive`)) as { status: number; body: Problem };
        const body = await d.cut;
        assert.match(body, /"op":"leases\.keepAlive"/, 'the call reached the draining instance before the cut');
        assert.deepEqual(
          [r.status, r.body.code, r.body.details?.reason, r.body.details?.outcome, r.body.details?.instance],
          [503, 'UNAVAILABLE', 'handoff', 'unknown', frames ? 'gamma' : 'delta'],
          JSON.stringify(r.body),
        );
        // The lease was never lost: the client's retry is carried out by the successor.
        const again = (await beta.rest.json('POST', `/v1/leases/${d.leaseId}/keepalive`)) as { status: number; body: { id: string; state: string } };
        assert.deepEqual([again.status, again.body.id, again.body.state], [200, d.leaseId, 'active']);
        const there = (await alpha.rest.json('GET', `/v1/leases/${d.leaseId}`)) as { status: number; body: { state: string } };
        assert.deepEqual([there.status, there.body.state], [200, 'active']);
        await alpha.rest.json('DELETE', `/v1/leases/${d.leaseId}`);
      } finally {
        d.close();
      }
    });
  }
});
