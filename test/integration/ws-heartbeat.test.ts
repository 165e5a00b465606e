/**
 * WebSocket per-socket state is shared or lazy (issue 12): idle sockets add no timer of their own
 * (one heartbeat pings every socket of the endpoint), a socket that stops answering pings is
 * still cut while the others stay, and the heartbeat's timer goes once the last socket closed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startZkServer, type ZkStandalone } from '../support/zk-server.js';
import { eventually, startTestGateway, type TestGateway } from '../support/test-gateway.js';

let zk: ZkStandalone;
let gw: TestGateway;
let url: string;

before(async () => {
  zk = await startZkServer();
  gw = await startTestGateway(zk.connectString, { watch: { heartbeatMs: 1000 } });
  url = `${gw.base.replace('http', 'ws')}/v1/ws`;
});

after(async () => {
  await gw?.close();
  await zk?.close();
});

/** Timers alive in this process (the gateway runs in it). */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

function open(opts: { autoPong?: boolean } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { autoPong: opts.autoPong ?? true });
    ws.once('message', () => resolve(ws)); // the welcome
    ws.once('error', reject);
  });
}

test('idle sockets share one heartbeat: 20 sockets add one timer, not 20; it goes with the last socket', async () => {
  const before = timers();
  const sockets = await Promise.all(Array.from({ length: 20 }, () => open()));
  assert.ok(timers() - before <= 1, `${timers() - before} timers for 20 idle sockets`);
  for (const ws of sockets) ws.close();
  await eventually(() => timers() <= before, 10_000, 'heartbeat timer gone');
});

test('a socket that stops answering pings is cut; sockets that answer stay and keep being pinged', async () => {
  const live = await open();
  const silent = await open({ autoPong: false });
  let pings = 0;
  live.on('ping', () => pings++);
  const cut = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
  assert.equal(await cut, 1006); // terminated, no close frame
  const seen = pings;
  await eventually(() => pings > seen, 10_000, 'live socket pinged after the cut');
  assert.equal(live.readyState, WebSocket.OPEN);
  live.close();
});
