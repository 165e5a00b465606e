/**
 * The internal channel's keep-alive sockets (src/core/cluster/channel.ts): a request that goes
 * out on a kept socket the peer closes before reading it (a draining instance closes its idle
 * connections) is sent again once on a new connection, instead of failing the forwarded call
 * with UNAVAILABLE "did not answer" (seen in cluster-haproxy.test during a graceful restart).
 * The peer here is a raw TCP server: its first connection answers one request and closes on
 * the next one unread; later connections answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { ChannelClient, readJson } from '../../src/core/cluster/channel.js';

test('a request on a kept-alive socket the peer closed unread is sent again on a new connection', async () => {
  let connections = 0;
  let answered = 0;
  const server = createServer((socket: Socket) => {
    const n = ++connections;
    let served = 0;
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
      if (buf.length < head + 4 + length) return;
      buf = buf.slice(head + 4 + length);
      // The first connection's second request: closed without a byte read or answered.
      if (n === 1 && served === 1) return void socket.destroy();
      served += 1;
      answered += 1;
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n{}`);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new ChannelClient('channel-test-secret-0123456789abcdef', 'test');
  try {
    assert.deepEqual(await readJson(await client.open(base, '/cluster/v1/ping', {}, { timeoutMs: 5000 })), {});
    assert.deepEqual(await readJson(await client.open(base, '/cluster/v1/ping', {}, { timeoutMs: 5000 })), {});
    assert.equal(connections, 2, 'the second request went again on a new connection');
    assert.equal(answered, 2);
  } finally {
    client.close();
    server.close();
  }
});
