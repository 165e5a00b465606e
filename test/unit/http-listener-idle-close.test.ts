/**
 * How the HTTP listener (src/api/http-listener.ts) closes a keep-alive connection between
 * requests — at its idle timeout and when a graceful drain begins — while a request is already
 * on its way on it (a balancer reusing server connections, haproxy `http-reuse safe`, sends one
 * at that instant). Node destroyed the socket with the request unread in its receive queue, so
 * the client got a reset: haproxy does not retry that, it closes its client's connection without
 * an answer ("other side closed" in cluster-haproxy.test). Now the client reads a clean close
 * (FIN) before any answer, which haproxy's `retry-on empty-response` sends again elsewhere, and
 * the request is never run. The client here is a raw socket; the event loop is held while the
 * request sits unread, so the close and the request cross as they would on a busy machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createHttpListener, type HttpListener } from '../../src/api/http-listener.js';

const REQUEST = 'POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n';

/** Busy-waits: the event loop reads nothing meanwhile, while the kernel queues what arrives. */
function hold(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

async function listener(idleTimeoutMs: number): Promise<{ l: HttpListener; port: number; ran: string[] }> {
  const ran: string[] = [];
  const l = createHttpListener(
    (req, res) => {
      ran.push(`${req.method} ${req.url}`);
      if (req.url === '/slow') setTimeout(() => res.end('ok'), 200);
      else res.end('ok');
    },
    { maxConnections: 10, maxConnectionsPerAddress: 0, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, idleTimeoutMs },
    null,
  );
  await new Promise<void>((r) => l.server.listen(0, '127.0.0.1', r));
  return { l, port: (l.server.address() as AddressInfo).port, ran };
}

/** A keep-alive connection that has had one request answered. */
async function keptConnection(port: number): Promise<{ socket: Socket; outcome: Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  const answered = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.endsWith('ok')) resolve();
    });
  });
  socket.write('GET /first HTTP/1.1\r\nHost: t\r\n\r\n');
  await answered;
  text = '';
  // What the client sees of its second request: an answer, a clean close, or a reset.
  const outcome = new Promise<string>((resolve) => {
    socket.on('end', () => resolve(text ? `answer then close: ${text}` : 'closed before any answer'));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
  });
  return { socket, outcome };
}

test('a request that crosses the idle timeout is met by a clean close and not run', async () => {
  // Node closes an idle connection 1 s after the advertised keep-alive timeout.
  const { l, port, ran } = await listener(100);
  try {
    const { socket, outcome } = await keptConnection(port);
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        socket.write(REQUEST);
        hold(1500); // the idle timeout passes with the request queued unread
        resolve();
      }),
    );
    assert.equal(await outcome, 'closed before any answer');
    socket.destroy();
    assert.deepEqual(ran, ['GET /first']);
  } finally {
    l.server.closeAllConnections();
    l.server.close();
  }
});

test('a drain ends idle connections the same way, and one running request is answered first', async () => {
  const { l, port, ran } = await listener(60_000);
  try {
    const idle = await keptConnection(port);
    const busy = await keptConnection(port);
    busy.socket.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
    while (!ran.includes('GET /slow')) await new Promise((r) => setTimeout(r, 5));
    idle.socket.write(REQUEST);
    hold(50); // queued unread when the drain begins
    l.drain();
    assert.equal(await idle.outcome, 'closed before any answer');
    assert.match(await busy.outcome, /^answer then close: HTTP\/1\.1 200 .*ok$/s);
    idle.socket.destroy();
    busy.socket.destroy();
    assert.deepEqual(ran, ['GET /first', 'GET /first', 'GET /slow']);
    // No new connections once draining.
    const refused = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => resolve('connected'));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
  } finally {
    l.server.closeAllConnections();
    l.server.close();
  }
});
