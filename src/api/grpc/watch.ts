/**
 * gRPC `zkgate.v1.Watch`: one bidirectional stream carries many hub subscriptions, named by
 * client ids, with the WebSocket protocol's semantics (docs/websocket.md). The adapter only
 * routes: subscriptions, ordering, resync, deduplication and slow-consumer cuts live in the hub.
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { WATCH_KINDS, ZkgateError, invalidArgument, type Gateway, type ScopedConnection, type WatchEvent, type WatchKind, type WatchStream } from '../../core/index.js';
import { mapError } from '../error-table.js';
import { failStream, scopeOf, writeWhenReady } from './call-context.js';
import { checkDecoded } from './malformed.js';
import { fromEnum, toEnum } from './proto-values.js';

interface WatchRequest {
  subscribe?: { id: string; path: string; kind: string } | null;
  unsubscribe?: { id: string } | null;
}
type Msg = Record<string, unknown>;
type WatchCall = ServerDuplexStream<WatchRequest, Msg>;

const MAX_ID_LENGTH = 128;

/** The proto form of a hub event (no stat = the node does not exist). */
function eventMessage(ev: WatchEvent): Msg {
  return { type: ev.type, path: ev.path, data: ev.data, stat: ev.stat, children: ev.children ?? [], zxid: ev.zxid, note: ev.note ?? '' };
}

function errorMessage(type: 'LOST' | 'ERROR', id: string, err: unknown): Msg {
  const { error } = mapError(err);
  return { type: `WATCH_RESPONSE_TYPE_${type}`, id, errorCode: error.code, errorMessage: error.message };
}

/** One Watch stream (a unit of the tenant's connections): its subscriptions by client id, within the per-connection limit. */
class WatchConnection {
  private readonly open = new Map<string, WatchStream>();

  constructor(
    private readonly conn: ScopedConnection,
    private readonly call: WatchCall,
  ) {
    call.on('data', (req: WatchRequest) => this.onRequest(req));
    call.on('end', () => {
      this.close();
      call.end();
    });
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
  }

  private send(msg: Msg): Promise<void> {
    return writeWhenReady(this.call, msg);
  }

  private onRequest(raw: WatchRequest): void {
    let id = '';
    try {
      const req = checkDecoded(raw);
      id = req.subscribe?.id ?? req.unsubscribe?.id ?? '';
      if (req.subscribe) this.subscribe(req.subscribe);
      else if (req.unsubscribe) this.unsubscribe(req.unsubscribe.id);
      else throw invalidArgument('request', 'must be subscribe or unsubscribe');
    } catch (err) {
      void this.send(errorMessage('ERROR', id, err));
    }
  }

  private subscribe(sub: { id: string; path: string; kind: string }): void {
    if (!sub.id || sub.id.length > MAX_ID_LENGTH) throw invalidArgument('id', `must be 1 to ${MAX_ID_LENGTH} characters`);
    if (this.open.has(sub.id)) throw invalidArgument('id', `subscription ${sub.id} is already open on this stream`);
    const kind: WatchKind = fromEnum<WatchKind>(sub.kind, 'WATCH_KIND', WATCH_KINDS, 'kind') ?? 'data';
    const stream = this.conn.watch(sub.path, { kind });
    this.open.set(sub.id, stream);
    void this.send({ type: 'WATCH_RESPONSE_TYPE_SUBSCRIBED', id: sub.id, path: sub.path, kind: toEnum('WATCH_KIND', kind) });
    void this.pump(sub.id, stream);
  }

  /** Forwards one subscription's events in order, waiting for the client to read. */
  private async pump(id: string, stream: WatchStream): Promise<void> {
    try {
      for await (const ev of stream) {
        if (this.open.get(id) !== stream) return; // unsubscribed: nothing more of this id
        await this.send({ type: 'WATCH_RESPONSE_TYPE_EVENT', id, event: eventMessage(ev) });
      }
      if (this.open.get(id) === stream) {
        await this.send(errorMessage('LOST', id, new ZkgateError('UNAVAILABLE', `watch ${id}: ended by the gateway`, {})));
      }
    } catch (err) {
      if (this.open.get(id) === stream) await this.send(errorMessage('LOST', id, err));
    } finally {
      if (this.open.get(id) === stream) this.open.delete(id);
    }
  }

  private unsubscribe(id: string): void {
    const stream = this.open.get(id);
    if (!stream) throw new ZkgateError('NOT_FOUND', `watch: no open subscription ${JSON.stringify(id)} on this stream`, {});
    this.open.delete(id);
    stream.stop();
    void this.send({ type: 'WATCH_RESPONSE_TYPE_UNSUBSCRIBED', id });
  }

  private close(): void {
    this.open.clear();
    this.conn.close();
  }
}

/** The Watch service implementation over `gw`. */
export function watchService(gw: Gateway): UntypedServiceImplementation {
  return {
    Watch: (call: WatchCall) => {
      try {
        new WatchConnection(scopeOf(gw, call).connect(), call);
      } catch (err) {
        failStream(call, err, gw.logger);
      }
    },
  };
}
