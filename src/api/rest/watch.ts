/**
 * Watch streams for curl and PHP: Server-Sent Events at GET /v1/watch/{path}, and the
 * long-poll (`?wait=&index=`) of GET /v1/nodes/{path} and /v1/children/{path}. Both ride on the
 * core watch hub.
 */
import type { ServerResponse } from 'node:http';
import type { Request, Response, Router } from 'express';
import { WATCH_KINDS, ZkgateError, invalidArgument, type Gateway, type Scope, type WatchEvent, type WatchKind, type WatchStream } from '../../core/index.js';
import { parseEncoding, watchEventText } from '../json.js';
import { intValue, scopeOf, stringParam, type Query } from './params.js';
import { pathRouter } from './path-router.js';
import { problemOf } from '../json.js';

/** `?wait=<ms>&index=<zxid>`; undefined when the request does not long-poll. */
export interface LongPoll {
  readonly waitMs: number;
  readonly index?: string;
}

/** Reads `wait` and `index`. @throws INVALID_ARGUMENT */
export function longPollParams(query: Query): LongPoll | undefined {
  const waitMs = intValue('wait', query('wait'));
  const index = query('index');
  if (index !== undefined && !/^\d{1,20}$/.test(index)) throw invalidArgument('index', 'must be a zxid (decimal digits) from X-Zkgate-Index');
  if (waitMs === undefined) return undefined;
  if (waitMs < 0) throw invalidArgument('wait', 'must be a number of ms, 0 or more');
  return { waitMs, index };
}

/**
 * Blocks as the long-poll asks and sets `X-Zkgate-Index` (and `X-Zkgate-Unchanged: true` when
 * the wait ended without a change). Resolves with the node's state. @throws NO_NODE when it does not exist
 */
export async function pollState(scope: Scope, res: ServerResponse, signal: AbortSignal, path: string, kind: 'data' | 'children', poll: LongPoll): Promise<WatchEvent> {
  const r = await scope.nodes.blockingRead(path, kind, { ...poll, signal });
  res.setHeader('X-Zkgate-Index', r.state.zxid);
  if (r.unchanged) res.setHeader('X-Zkgate-Unchanged', 'true');
  if (!r.state.stat) throw new ZkgateError('NO_NODE', `${path}: node does not exist`, { path });
  return r.state;
}

function kindParam(req: Request): WatchKind {
  const k = stringParam(req, 'kind') ?? 'data';
  if (!(WATCH_KINDS as readonly string[]).includes(k)) throw invalidArgument('kind', `must be one of ${WATCH_KINDS.join(', ')}`);
  return k as WatchKind;
}

/** One Server-Sent Events frame (its data: the JSON of `body`). */
export function sseFrame(event: string, id: string | undefined, body: unknown): string {
  return textFrame(event, id, JSON.stringify(body));
}

/** An SSE frame whose data is JSON text already. */
function textFrame(event: string, id: string | undefined, json: string): string {
  return `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${json}\n\n`;
}

/** Waits until the response can take more, or the stream ended (e.g. cut as a slow consumer). */
/**
 * Resolves when `res` takes more again ('drain') or never will: the response closed (a reader
 * gone while a write waits gets no 'drain') or `ended` settled. Callers check `res.destroyed`.
 */
export function drained(res: Response, ended?: PromiseLike<unknown>): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
    ended?.then(done, done);
  });
}

/** GET /v1/watch/{path}?kind=data|children|subtree&encoding=base64: a Server-Sent Events stream. */
export function watchRouter(gw: Gateway): Router {
  return pathRouter({
    GET: async (req, res, path) => {
      const kind = kindParam(req);
      const encoding = parseEncoding(stringParam(req, 'encoding'));
      // An SSE response is a streaming connection: a unit of the tenant's connections, and one subscription.
      const conn = scopeOf(res).connect();
      res.on('close', () => conn.close());
      const stream = conn.watch(path, { kind });
      res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), gw.config.watch.heartbeatMs);
      try {
        for await (const ev of stream) {
          if (!res.write(textFrame(ev.type, ev.zxid, watchEventText(ev, encoding)))) await drained(res, stream.closed);
          if (res.destroyed) break;
        }
      } catch (err) {
        res.write(sseFrame('error', undefined, problemOf(err)));
        // A consumer cut for being slow may never read its error: do not hold its socket forever.
        setTimeout(() => res.destroy(), 5000).unref();
      } finally {
        clearInterval(heartbeat);
        conn.close();
        res.end();
      }
    },
  });
}
