/**
 * Event frames are written to subscribers' sockets without ws' Sender (src/api/ws/event-pump.ts):
 * a real ws client must read each length form (7-bit, 16-bit, 64-bit) as the exact text message.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { textFrame } from '../../src/api/ws/event-pump.js';

describe('WebSocket text frames built once', () => {
  test('a ws client reads frames of every length form as the same text, between frames ws sent', { timeout: 20_000 }, async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await once(wss, 'listening');
    // Payload bytes at each edge of the length forms, and multi-byte UTF-8.
    const texts = [0, 1, 125, 126, 65_535, 65_536, 300_000].map((n) => 'x'.repeat(n)).concat('é→😀 '.repeat(5000));
    wss.on('connection', (ws, req) => {
      const socket: Duplex = req.socket; // the socket ws took over
      ws.send('before');
      for (const t of texts) socket.write(textFrame(t));
      ws.send('after');
    });
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false });
    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on('message', (m: Buffer, isBinary: boolean) => {
        assert.equal(isBinary, false);
        got.push(m.toString('utf8'));
        if (got.length === texts.length + 2) resolve();
      }),
    );
    await all;
    assert.deepEqual(got, ['before', ...texts, 'after']);
    client.close();
    await once(client, 'close');
    wss.close();
  });
});
