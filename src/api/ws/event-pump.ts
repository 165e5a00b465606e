/**
 * Fan-out to WebSocket subscribers. A change the hub hands to 10,000 subscriptions is one event
 * object; it becomes one WebSocket frame (header and JSON text) per subscription id and encoding,
 * built once and written as it is to every subscriber's socket: server frames are not masked
 * and the endpoint has no per-message compression, so the bytes on the wire are the same for
 * every socket. Each subscription takes its events in push mode (`QueuedIterator.consume`): no
 * promise, generator step, string or frame header per event and socket, and no closure: the hub
 * calls the stream, the stream the pump (see `Consumer`).
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Consumer, WatchEvent, WatchStream } from '../../core/index.js';
import { watchEventText, type Encoding } from '../json.js';

/**
 * One unfragmented, unmasked text frame carrying `text` as UTF-8 (RFC 6455 §5.2): FIN and opcode
 * 1, then the length in 7, 7+16 or 7+64 bits. What ws' Sender writes for `send(text)` on a
 * server socket without compression, in one Buffer.
 */
export function textFrame(text: string): Buffer {
  const n = Buffer.byteLength(text);
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  frame.write(text, head, 'utf8');
  return frame;
}

/** Queued behind a write that was not wholly taken, for its callback (see EventPump). */
const EMPTY = Buffer.alloc(0);

/** Event frames by event (collected with it), encoding (`auto`/`base64`) and subscription id. */
const frames = new WeakMap<WatchEvent, { auto?: Map<string, Buffer>; base64?: Map<string, Buffer> }>();

/** The frame `eventFrame` returned last (it holds one event alive until the next). */
let last: { readonly ev: WatchEvent | undefined; readonly id: string; readonly key: string; readonly frame: Buffer } = { ev: undefined, id: '', key: '', frame: EMPTY };

/** The frame of `{"type":"event","id":…,"event":…}`, built once per event, id and encoding. */
export function eventFrame(id: string, ev: WatchEvent, encoding: Encoding | undefined): Buffer {
  // watchEventText treats every encoding but base64 alike.
  const key = encoding === 'base64' ? 'base64' : 'auto';
  // A change's deliveries come one after another and mostly share an id: no lookup for those.
  if (ev === last.ev && id === last.id && key === last.key) return last.frame;
  let byKey = frames.get(ev);
  if (!byKey) frames.set(ev, (byKey = {}));
  const byId = (byKey[key] ??= new Map());
  let frame = byId.get(id);
  if (!frame) byId.set(id, (frame = textFrame(`{"type":"event","id":${JSON.stringify(id)},"event":${watchEventText(ev, encoding)}}`)));
  last = { ev, id, key, frame };
  return frame;
}

/**
 * Feeds one subscription's events to its socket. Frames go to the socket ws took over, after
 * whatever ws wrote before (ws writes each of its frames in one synchronous step, so nothing
 * interleaves), and only while ws says the socket is OPEN (never after a close frame). While a
 * write of ours is not wholly handed to the kernel (the client reads slower than we write), the
 * stream waits and its events pile up in the hub's bounded queue, which cuts the subscriber with
 * SLOW_CONSUMER once `watch.queueSize` are waiting: the socket's buffer holds at most one event
 * of this subscription, as when the pump awaited every send. `ws.bufferedAmount` counts these
 * writes too (it reads the socket's buffer), so the reply bound (`watch.maxSendBufferBytes`)
 * sees them.
 *
 * A frame is written without a callback: Node's Writable runs a write's callback on a
 * `process.nextTick` of its own (a tick and an object per socket per change, and a second pass
 * over every socket's state after the loop), while a callback-less write the kernel took at once
 * costs nothing after it. Only a write that was not wholly taken (`writableLength` above 0) gets
 * an empty write queued behind it, whose callback says when the socket's buffer has gone out
 * (writes complete in order): one callback per wait instead of one per event.
 */
export class EventPump implements Consumer<WatchEvent> {
  /** Event messages written (counted here, on an object each delivery touches anyway; the connection adds them up). */
  sent = 0;
  private waiting = false;
  /** Called by the socket once what it buffered before our empty write is in the kernel (or failed: the socket is going). */
  private readonly onFlushed = (): void => {
    if (!this.waiting) return;
    this.waiting = false;
    this.stream.resume();
  };

  constructor(
    private readonly ws: WebSocket,
    /** The upgraded socket ws writes to. */
    private readonly socket: Duplex,
    private readonly id: string,
    private readonly stream: WatchStream,
    private readonly encoding: Encoding | undefined,
  ) {
    stream.consume(this);
  }

  /** Writes `ev`'s frame; false (wait) when the socket did not take all of it at once. */
  take(ev: WatchEvent): boolean {
    // Unsubscribed (the stream is stopped then) or closing: what was queued is dropped.
    if (this.stream.isStopped || this.ws.readyState !== this.ws.OPEN) return true;
    this.sent++;
    const socket = this.socket;
    socket.write(eventFrame(this.id, ev, this.encoding));
    if (socket.writableLength === 0) return true;
    // Writes complete in order: the empty one's callback comes once this frame (and anything
    // before it) has gone out.
    this.waiting = true;
    socket.write(EMPTY, this.onFlushed);
    return false;
  }
}
