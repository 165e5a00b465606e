/**
 * W, the fan-out peer: a raw `ws` server that broadcasts every message received on `/publish` to
 * every other socket, as the `ws` README's broadcast example does. `start` → its port.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { serve } from './ipc.js';

const subscribers = new Set<WebSocket>();
const http = createServer();
const wss = new WebSocketServer({ server: http });
wss.on('connection', (ws, req) => {
  if (req.url === '/publish') {
    ws.on('message', (data, isBinary) => {
      for (const c of subscribers) c.send(data, { binary: isBinary });
    });
    return;
  }
  subscribers.add(ws);
  ws.on('close', () => subscribers.delete(ws));
});

serve({
  start: () =>
    new Promise<number>((resolve) => {
      http.listen(0, '127.0.0.1', () => resolve((http.address() as { port: number }).port));
    }),
  close: () => {
    for (const c of subscribers) c.terminate();
    http.close();
  },
});
