/**
 * One WebSocket connection: many watch subscriptions with client-chosen ids, election observes,
 * at most one lease bound to the socket (kept alive while it is open), lease-state events,
 * ping/pong heartbeats. Every op is authorized for the socket's principal like the REST call
 * it mirrors. Bad messages get an `error` message and leave the socket usable; a socket too slow
 * to take its events is closed with SLOW_CONSUMER's close code, one sending faster than
 * `limits.wsMessagesPerSecond` with LIMIT_EXCEEDED's.
 */
import type { RawData, WebSocket } from 'ws';
import {
  DEFAULT_BASE,
  TokenBucket,
  ZkgateError,
  invalidArgument,
  type Gateway,
  type Lease,
  type LeaseStateEvent,
  type Scope,
  type ScopedConnection,
  type WatchStream,
} from '../../core/index.js';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { callerFields, msSince } from '../access-log.js';
import { ERROR_TABLE, mapError } from '../error-table.js';
import { countError } from '../metrics.js';
import { leaderStateJson } from '../json.js';
import { runCall } from './calls.js';
import { EventPump } from './event-pump.js';
import type { Heartbeat } from './heartbeat.js';
import { CLIENT_OPS, messageContext, parseClientMessage, type ClientMessage, type MessageContext, type ServerMessage } from './messages.js';

type Msg<K extends ClientMessage['op']> = Extract<ClientMessage, { op: K }>;


/** How long a socket being closed for an error may take to receive its close frame before it is dropped, ms. */
const CUT_GRACE_MS = 30_000;

/** Sent to a subscriber that has none of that kind open, instead of a Map per idle socket. */
const NO_SUBS: ReadonlyMap<string, { stop(): void }> = new Map();

/**
 * Per-socket state is made when first needed: an idle socket (welcomed, nothing subscribed)
 * holds no subscription map, rate bucket or abort controller of its own, and no timer (the
 * endpoint's one heartbeat pings it).
 */
export class WsConnection {
  /** Open subscriptions and election observes by client id; `stop()` ends one. */
  private subsMap: Map<string, { stop(): void }> | undefined;
  private rate: TokenBucket | undefined;
  private closedController: AbortController | undefined;
  private isClosed = false;
  private lease: Lease | undefined;
  /** A lease_grant or lease_attach is under way. */
  private binding = false;
  private alive = true;
  private readonly opened = performance.now();
  private messagesIn = 0;
  private messagesOut = 0;

  constructor(
    private readonly ws: WebSocket,
    /** The upgraded socket ws writes to: event frames are written to it directly (EventPump). */
    private readonly socket: Duplex,
    private readonly gw: Gateway,
    private readonly scope: Scope,
    private readonly conn: ScopedConnection,
    private readonly heartbeat: Heartbeat,
    /** Names the connection in its access lines: the upgrade's X-Request-Id, echoed in the 101. */
    private readonly connId: string = randomUUID(),
  ) {
    const cfg = gw.config.watch;
    ws.on('message', (data, isBinary) => this.socketOnMessage(data, isBinary));
    ws.on('pong', () => (this.alive = true));
    ws.on('close', (code) => this.socketOnClose(code));
    ws.on('error', () => undefined); // 'close' follows
    heartbeat.add(this);
    void this.send({
      type: 'welcome',
      tenant: scope.tenant,
      heartbeatMs: cfg.heartbeatMs,
      maxMessageBytes: scope.limits.wsMaxMessageBytes,
      messagesPerSecond: scope.limits.wsMessagesPerSecond,
      maxSubscriptions: conn.limit,
      queueSize: cfg.queueSize,
      ops: CLIENT_OPS,
    });
  }

  private get subs(): ReadonlyMap<string, { stop(): void }> {
    return this.subsMap ?? NO_SUBS;
  }

  private openSub(id: string, sub: { stop(): void }): void {
    (this.subsMap ??= new Map()).set(id, sub);
  }

  private dropSub(id: string): void {
    this.subsMap?.delete(id);
  }

  /** Aborts when the socket closes (core waits and the bound lease's keepalive take it). */
  private get closed(): AbortSignal {
    this.closedController ??= new AbortController();
    if (this.isClosed) this.closedController.abort();
    return this.closedController.signal;
  }

  /** Queues a message; resolves once the socket took it (backpressure for the event pumps). */
  private send(msg: ServerMessage): Promise<void> {
    return this.sendText(JSON.stringify(msg));
  }

  private sendText(text: string): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.resolve();
    this.messagesOut++;
    const sent = new Promise<void>((resolve) => this.ws.send(text, () => resolve()));
    // Event pumps wait for each send, but replies do not: a client that keeps calling and never
    // reads would grow this buffer without bound. Past the bound it is dropped at once (a close
    // frame queued behind megabytes it does not read would never reach it).
    if (this.ws.bufferedAmount > this.gw.config.watch.maxSendBufferBytes) this.dropSlowReader();
    return sent;
  }

  private dropSlowReader(): void {
    const max = this.gw.config.watch.maxSendBufferBytes;
    this.closeWith(new ZkgateError('SLOW_CONSUMER', `more than ${max} bytes not taken by the client (watch.maxSendBufferBytes)`, { limit: 'watch.maxSendBufferBytes', max }));
    this.ws.terminate();
  }

  private replyError(err: unknown, ctx: MessageContext): void {
    const { error } = mapError(err);
    countError(error, 'ws');
    const details = Object.keys(error.details).length ? { ...error.details } : undefined;
    void this.send({ type: 'error', op: ctx.op, id: ctx.id, code: error.code, message: error.message, details });
    if (error.code === 'INTERNAL') this.gw.logger.error({ err }, 'websocket: request failed');
  }

  private socketOnMessage(data: RawData, isBinary: boolean): void {
    this.messagesIn++;
    this.rate ??= new TokenBucket(this.scope.limits.wsMessagesPerSecond);
    if (!this.rate.take()) {
      const err = new ZkgateError('LIMIT_EXCEEDED', `more than ${this.rate.ratePerSecond} messages a second (limits.wsMessagesPerSecond)`, {
        limit: 'wsMessagesPerSecond',
        max: this.rate.ratePerSecond,
      });
      this.closeWith(err);
      return;
    }
    // No size check here: ws' maxPayload (limits.wsMaxMessageBytes) closed the socket 1009 before
    // a larger message was read (src/api/ws/server.ts).
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) {
      this.replyError(invalidArgument('message', 'must be a JSON text frame, not binary'), {});
      return;
    }
    const text = bytes.toString('utf8');
    let msg: ClientMessage;
    try {
      msg = parseClientMessage(text);
    } catch (err) {
      this.replyError(err, messageContext(text));
      return;
    }
    this.handle(msg).catch((err: unknown) => this.replyError(err, { op: msg.op, id: 'id' in msg ? msg.id : undefined }));
  }

  private async handle(msg: ClientMessage): Promise<void> {
    switch (msg.op) {
      case 'subscribe':
        return this.subscribe(msg);
      case 'unsubscribe':
        return this.unsubscribe(msg);
      case 'lease_grant':
        return this.bindOne(() => this.scope.leases.grant(msg.ttlMs));
      case 'lease_attach':
        return this.bindOne(() => this.scope.leases.attach(msg.leaseId));
      case 'observe':
        return this.observe(msg);
      case 'instances':
        return this.instances(msg);
      case 'call': {
        const started = performance.now();
        let result: unknown;
        try {
          result = await runCall({ scope: this.scope, signal: this.closed }, msg.method, msg.params);
        } catch (err) {
          this.logCall(msg, started, mapError(err).error.code);
          throw err;
        }
        this.logCall(msg, started, 'OK');
        return this.send({ type: 'result', id: msg.id, method: msg.method, result });
      }
      case 'ping':
        // With a lease bound, the pong is its keepalive reply: the lease as it stands now.
        return this.send({ type: 'pong', data: msg.data, ...(this.lease ? { lease: this.lease.info() } : {}) });
    }
  }

  private subscribe(msg: Msg<'subscribe'>): void {
    this.assertNewId(msg.id);
    const stream = this.conn.watch(msg.path, { kind: msg.kind });
    this.openSub(msg.id, stream);
    void this.send({ type: 'subscribed', id: msg.id, path: msg.path, kind: msg.kind });
    this.pump(msg.id, stream, msg.encoding);
  }

  private assertNewId(id: string): void {
    if (this.subs.has(id)) throw invalidArgument('id', `subscription ${id} is already open on this socket`);
  }

  /** Election observe: the leader state now, then every change including "no leader". */
  private observe(msg: Msg<'observe'>): void {
    this.assertNewId(msg.id);
    const ac = new AbortController();
    const states = this.conn.observe(msg.path, { signal: ac.signal });
    this.follow(msg.id, 'observe', ac, states, { path: msg.path, kind: 'election' }, (state) => ({ type: 'leader', id: msg.id, state: leaderStateJson(state) }));
  }

  /** A service's instance set now, then after every change (the registry). */
  private instances(msg: Msg<'instances'>): void {
    this.assertNewId(msg.id);
    const ac = new AbortController();
    const sets = this.conn.instances(msg.base, msg.service, { signal: ac.signal });
    const path = `${msg.base ?? DEFAULT_BASE}/${msg.service}`;
    this.follow(msg.id, 'instances', ac, sets, { path, kind: 'service' }, (set) => ({ type: 'instances', id: msg.id, set }));
  }

  /** Sends a core observation's states as they come, until unsubscribed or the socket closes. */
  private follow<T>(id: string, op: string, ac: AbortController, states: AsyncGenerator<T>, what: { path: string; kind: 'election' | 'service' }, toMsg: (s: T) => ServerMessage): void {
    const sub = { stop: () => ac.abort() };
    this.openSub(id, sub);
    void this.send({ type: 'subscribed', id, ...what });
    void (async () => {
      try {
        // The observation reads only when pulled, so a slow socket cannot make it buffer.
        for await (const state of states) {
          if (this.subs.get(id) !== sub) break;
          await this.send(toMsg(state));
        }
      } catch (err) {
        if (!ac.signal.aborted) this.replyError(err, { op, id });
      } finally {
        if (this.subs.get(id) === sub) this.dropSub(id);
      }
    })();
  }

  /**
   * Hands the stream's events to the socket as they come (see EventPump). The stream ends with an
   * error (the subscriber fell `watch.queueSize` behind, the watch failed, the gateway is going)
   * once, here: the socket is closed with SLOW_CONSUMER's code, else the error is sent.
   */
  private pump(id: string, stream: WatchStream, encoding: 'utf8' | 'base64' | undefined): void {
    const pump = new EventPump(this.ws, this.socket, id, stream, encoding);
    stream.onStop((err) => {
      // The pump writes nothing once its stream stopped: its count is final.
      this.messagesOut += pump.sent;
      if (this.subs.get(id) === stream) this.dropSub(id);
      if (!err) return;
      // After the hub's delivery that cut it has finished (the cut happens inside a push).
      queueMicrotask(() => {
        if (err instanceof ZkgateError && err.code === 'SLOW_CONSUMER') this.closeWith(err);
        else this.replyError(err, { op: 'subscribe', id });
      });
    });
  }

  private async unsubscribe(msg: Msg<'unsubscribe'>): Promise<void> {
    const stream = this.subs.get(msg.id);
    if (!stream) throw new ZkgateError('NOT_FOUND', `subscription ${msg.id} is not open on this socket`, { id: msg.id });
    this.dropSub(msg.id);
    stream.stop();
    await this.send({ type: 'unsubscribed', id: msg.id });
  }

  /** One lease per socket; another may be bound once it ended. */
  private assertNoLease(): void {
    if (this.binding) throw invalidArgument('op', 'a lease is being bound to this socket');
    if (this.lease && !this.lease.isEnded) throw invalidArgument('op', `lease ${this.lease.id} is already bound to this socket`);
  }

  /**
   * Binds the lease `get` gives, refusing a second bind while the first is under way (a grant
   * may travel to the tenant's home instance: docs/cluster.md "Lease placement").
   */
  private async bindOne(get: () => Promise<Lease>): Promise<void> {
    this.assertNoLease();
    this.binding = true;
    try {
      await this.bindLease(await get());
    } finally {
      this.binding = false;
    }
  }

  /** Binds `lease` to the socket: kept alive while it is open, its state changes pushed. */
  private async bindLease(lease: Lease): Promise<void> {
    await this.scope.leases.keepAliveWhileOpen(lease, this.closed);
    this.lease = lease;
    const onState = (e: LeaseStateEvent): void => {
      // Sent with what the lease owned at that moment: on loss, these ephemerals and locks are gone.
      const owned = lease.info().owned.map((o) => ({ path: o.path, kind: o.kind }));
      void this.send({ type: 'lease_state', leaseId: e.leaseId, state: e.state, reason: e.reason, trustMs: e.trustMs, owned });
    };
    lease.on('state', onState);
    this.closed.addEventListener('abort', () => lease.off('state', onState), { once: true });
    await this.send({ type: 'lease', lease: lease.info() });
  }

  /** Closes the socket with the error's close code and `CODE: message` as the reason. */
  private closeWith(err: ZkgateError): void {
    if (this.isClosed) return;
    countError(err, 'ws');
    const code = ERROR_TABLE[err.code].ws;
    this.ws.close(code, `${err.code}: ${err.message}`.slice(0, 123));
    setTimeout(() => this.ws.terminate(), CUT_GRACE_MS).unref();
    this.socketOnClose(code, err.code);
  }

  /** The access line of one `call` op: its method and outcome (`OK` or the error code). */
  private logCall(msg: Msg<'call'>, started: number, status: string): void {
    this.gw.logger.info({ reqId: this.connId, id: msg.id, method: msg.method, status, durationMs: msSince(started), ...callerFields(this.scope.principal) }, 'websocket call');
  }

  /** Called by the endpoint's heartbeat. */
  beat(): void {
    if (!this.alive) {
      this.ws.terminate(); // no pong since the last ping
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  /** @param closeCode the close code sent or received; `errorCode` when the gateway cut the socket for an error */
  private socketOnClose(closeCode?: number, errorCode?: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closedController?.abort();
    this.heartbeat.delete(this);
    // First, so that their pumps' event messages are in messagesOut.
    for (const sub of this.subs.values()) sub.stop();
    this.subsMap = undefined;
    // The connection's access line: who, how long, how it ended, how much went each way.
    this.gw.logger.info(
      {
        reqId: this.connId,
        ...callerFields(this.scope.principal),
        durationMs: msSince(this.opened),
        closeCode: closeCode ?? 1006,
        ...(errorCode ? { code: errorCode } : {}),
        messagesIn: this.messagesIn,
        messagesOut: this.messagesOut,
      },
      'websocket closed',
    );
    this.conn.close();
  }
}
