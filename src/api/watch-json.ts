/**
 * The JSON form of a watch event, shared by Server-Sent Events and WebSocket: data as text or
 * base64 with an explicit `encoding`, 64-bit zxids as strings.
 */
import type { Stat, WatchEvent, WatchEventType } from '../core/index.js';
import { encodeData, type Encoding } from './json-data.js';

export interface WatchEventJson {
  type: WatchEventType;
  path: string;
  /** mzxid (data), pzxid (children), "0" when the node does not exist; long-poll `index`. */
  zxid: string;
  stat: Stat | null;
  data?: string;
  encoding?: Encoding;
  children?: string[];
  note?: string;
}

/** `base64` forces base64; otherwise data is UTF-8 text when valid, else base64. */
export function watchEventJson(ev: WatchEvent, encoding?: Encoding): WatchEventJson {
  const out: WatchEventJson = { type: ev.type, path: ev.path, zxid: ev.zxid, stat: ev.stat };
  if (ev.data !== undefined) Object.assign(out, encodeData(ev.data, encoding === 'base64' ? 'base64' : undefined));
  if (ev.children !== undefined) out.children = [...ev.children];
  if (ev.note !== undefined) out.note = ev.note;
  return out;
}
