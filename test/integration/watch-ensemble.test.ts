import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tenant } from '../../src/core/index.js';
import { startZkEnsemble, tryFourLetter, type ZkEnsemble } from '../support/zk-server.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { WsTestClient } from '../support/ws-client.js';

/** Index of the ensemble member holding the gateway's session (by `cons`). */
async function connectedMember(ens: ZkEnsemble, tenant: Tenant): Promise<number> {
  const sid = `0x${tenant.session.sessionId}`;
  for (let i = 0; i < ens.members.length; i++) {
    const m = ens.members[i];
    if (!m?.running) continue;
    if ((await tryFourLetter(m.clientPort, 'cons')).includes(`sid=${sid}`)) return i;
  }
  return -1;
}

describe('watch across a ZooKeeper ensemble restart', () => {
  let ens: ZkEnsemble;
  let gw: TestGateway;
  let tenant: Tenant;

  before(async () => {
    ens = await startZkEnsemble(3);
    gw = await startTestGateway(ens.connectString, { watch: { heartbeatMs: 1000 } });
    tenant = gw.running.gateway.tenant();
  });
  after(async () => {
    await gw?.close();
    await ens?.close();
  });

  test('a WebSocket subscriber survives restarts of the member the gateway is connected to, with a resync each time', async () => {
    await tenant.client().create('/ens', Buffer.from('v0'), 'persistent');
    const c = await WsTestClient.open(`${gw.base.replace('http', 'ws')}/v1/ws`);
    c.send({ op: 'subscribe', id: 'cfg', path: '/ens' });
    assert.equal((await c.event('cfg', 'current')).event.data, 'v0');
    const sessionId = tenant.session.sessionId;
    for (const round of [1, 2]) {
      let idx = -1;
      await eventually(async () => (idx = await connectedMember(ens, tenant)) >= 0, 10_000, 'connected member found');
      const member = ens.members[idx];
      assert.ok(member);
      await member.stop();
      const resync = await c.event('cfg', 'resync', 30_000);
      assert.equal(resync.event.data, `v${round - 1}`, `round ${round}: resync carries the current state`);
      assert.match(resync.event.note, /coalesced/);
      await eventually(() => tenant.ready, 15_000, 'session usable again');
      await tenant.client().set('/ens', Buffer.from(`v${round}`));
      assert.equal((await c.event('cfg', 'data_changed', 15_000)).event.data, `v${round}`, `round ${round}: changes flow again`);
      await member.start();
    }
    assert.equal(tenant.session.sessionId, sessionId, 'the same session survived (a reconnect, not an expiry)');
    c.close();
  });
});
