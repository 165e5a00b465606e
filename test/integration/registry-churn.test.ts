/**
 * Churn: providers join and die (revoked, or crashed: their keepalives stop and the lease
 * expires) while consumers follow the service over SSE and WebSocket. After every round each
 * consumer's latest instance set converges to the live set, and at the end to the gateway's own
 * listing. Prints the counts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { eventually, uniquePath, zkAndGateway } from '../support/test-gateway.js';
import { readSse } from '../support/sse.js';

const ROUNDS = 16;
const TTL_MS = 1500;

interface InstanceSet {
  index: string;
  instances: { id: string }[];
}

/** A consumer's view: the latest set it was sent and how many sets came. */
interface Consumer {
  latest(): string[] | undefined;
  readonly received: () => number;
  close(): void;
}

function sseConsumer(url: string): Consumer {
  const ac = new AbortController();
  let latest: string[] | undefined;
  let received = 0;
  void (async () => {
    const res = await fetch(url, { signal: ac.signal });
    await readSse(res, (event, data) => {
      if (event !== 'instances') return;
      latest = (JSON.parse(data) as InstanceSet).instances.map((x) => x.id);
      received++;
    });
  })().catch(() => undefined);
  return { latest: () => latest, received: () => received, close: () => ac.abort() };
}

function wsConsumer(url: string, base: string, service: string): Consumer {
  const ws = new WebSocket(url);
  let latest: string[] | undefined;
  let received = 0;
  ws.on('open', () => ws.send(JSON.stringify({ op: 'instances', id: 'w', service, base })));
  ws.on('message', (raw) => {
    const m = JSON.parse(String(raw)) as { type: string; set?: InstanceSet };
    if (m.type !== 'instances' || !m.set) return;
    latest = m.set.instances.map((x) => x.id);
    received++;
  });
  ws.on('error', () => undefined);
  return { latest: () => latest, received: () => received, close: () => ws.close() };
}

describe('service registry churn', () => {
  const env = zkAndGateway();

  test('churn › providers join and die; every consumer converges to the live set after each round', async (t) => {
    const rest = env.g.rest;
    const base = uniquePath('churn');
    const service = 'api';
    const q = { query: { base } };
    const grant = (): Promise<string> =>
      eventually(async () => ((await rest.json('POST', '/v1/leases', { ttlMs: TTL_MS })).body as { id?: string }).id, 20_000, 'a lease');
    const consumers = [
      sseConsumer(`${env.g.base}/v1/services/${service}/watch?base=${encodeURIComponent(base)}`),
      wsConsumer(`${env.g.base.replace('http', 'ws')}/v1/ws`, base, service),
    ];
    /** Live providers: instance id → lease. */
    const live = new Map<string, string>();
    let alive = true;
    // Providers keep their leases alive until they die.
    const keepalives = (async () => {
      while (alive) {
        await Promise.all([...live.values()].map((l) => rest.json('POST', `/v1/leases/${l}/keepalive`)));
        await new Promise((r) => setTimeout(r, TTL_MS / 4));
      }
    })();
    let next = 0;
    const counts = { joined: 0, revoked: 0, crashed: 0, converged: 0 };
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed >>> 16) % n; // the high bits: an LCG's low bits cycle
    };
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const joins = 1 + rand(3);
        for (let i = 0; i < joins; i++) {
          const id = `p${next++}`;
          const l = await grant();
          const r = await rest.json('POST', `/v1/services/${service}/instances`, { leaseId: l, id, address: `10.0.0.${next}`, port: 8000 + next }, q);
          assert.equal(r.status, 201);
          live.set(id, l);
          counts.joined++;
        }
        const deaths = Math.min(rand(3), live.size);
        for (let i = 0; i < deaths; i++) {
          const ids = [...live.keys()];
          const id = ids[rand(ids.length)] as string;
          const l = live.get(id) as string;
          live.delete(id); // either way its keepalives stop now
          if (rand(2) === 0) {
            await rest.json('DELETE', `/v1/leases/${l}`);
            counts.revoked++;
          } else {
            counts.crashed++; // the lease expires within its TTL
          }
        }
        const want = [...live.keys()].sort().join(',');
        for (const c of consumers) await eventually(() => c.latest()?.join(',') === want, TTL_MS + 15_000, `round ${round}: a consumer to see ${want}`);
        counts.converged++;
      }
      const listed = ((await rest.json('GET', `/v1/services/${service}`, undefined, q)).body as InstanceSet).instances.map((i) => i.id);
      assert.deepEqual(listed, [...live.keys()].sort());
      for (const c of consumers) assert.deepEqual(c.latest(), listed);
      t.diagnostic(
        `churn: rounds ${ROUNDS}, joined ${counts.joined}, revoked ${counts.revoked}, crashed ${counts.crashed}, live at the end ${live.size}, ` +
          `rounds converged ${counts.converged}/${ROUNDS}, sets received SSE ${consumers[0]?.received()} WebSocket ${consumers[1]?.received()}`,
      );
      assert.equal(counts.converged, ROUNDS);
    } finally {
      alive = false;
      await keepalives;
      for (const c of consumers) c.close();
      for (const l of live.values()) await rest.json('DELETE', `/v1/leases/${l}`);
    }
  });
});
