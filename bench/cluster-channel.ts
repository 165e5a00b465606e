/**
 * The internal channel alone (docs/cluster.md "Forwarding overhead"): a `ChannelClient` in this
 * process calls a `FrameServer` in a child process over loopback, one call at a time, a body
 * like a forwarded keepalive's, and each side reports the CPU it spent per call
 * (`process.cpuUsage`, user + system). No gateway, ZooKeeper or HTTP request around it, so a
 * change to the channel's own code (frames, MAC, codec) shows without the rest of a forwarded
 * call's noise; the machine's load still moves it, so compare builds in alternating runs.
 *
 *   node dist/bench/cluster-channel.js     ROUNDS=6 CALLS=5000 by default; WAIT=1 sends each
 *                                          call with a signal (a wait: the cancel path is armed)
 */
import { fork } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CALL_PATH, ChannelClient, ChannelVerifier, secretKey } from '../src/core/cluster/channel.js';
import { FrameServer } from '../src/core/cluster/frames.js';

const SECRET = 'channel-bench-secret-0123456789abcdef';
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const CALLS = Number(process.env.CALLS ?? 5000);
const WAIT = process.env.WAIT === '1';
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

if (process.argv[2] === 'owner') {
  // The owner: answers each call with a lease's info, as a forwarded keepalive's answer is.
  const info = { id: 'gw1.0123456789abcdef0123456789abcdef01234567', state: 'active', ttlMs: 600000, remainingMs: 599000, trustMs: 590000, owner: 'anonymous', owned: [] };
  const frames = new FrameServer(secretKey(SECRET), new ChannelVerifier(SECRET), async (body, gone, reply) => {
    JSON.parse(body);
    if (body.includes('{"$s":1}')) gone();
    reply({ ok: { $l: info } });
  }, () => undefined);
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => frames.upgrade(req, socket, head));
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  let mark = cpuUs();
  process.on('message', (m: string) => {
    if (m === 'mark') {
      mark = cpuUs();
      process.send?.({ marked: true });
    } else if (m === 'read') process.send?.({ cpu: cpuUs() - mark });
    else process.exit(0);
  });
} else {
  const child = fork(fileURLToPath(import.meta.url), ['owner']);
  const ask = <T>(m: string | null): Promise<T> =>
    new Promise((r) => {
      child.once('message', (v) => r(v as T));
      if (m) child.send(m);
    });
  const { port } = await ask<{ port: number }>(null);
  const base = `http://127.0.0.1:${port}`;
  const client = new ChannelClient(SECRET, 'bench');
  const body = { tenant: 'default', keyId: 'anonymous', op: 'leases.keepAlive', args: WAIT ? ['gw1.0123456789abcdef0123456789abcdef01234567', { $s: 1 }] : ['gw1.0123456789abcdef0123456789abcdef01234567'] };
  const once = async (): Promise<void> => {
    const ac = WAIT ? new AbortController() : undefined;
    await client.call(base, CALL_PATH, body, ac ? { signal: ac.signal } : { timeoutMs: 10_000 });
  };
  for (let i = 0; i < CALLS; i++) await once(); // warm-up: connection, JIT
  const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');
  process.stdout.write(`channel bench: ${ROUNDS}×${CALLS} calls${WAIT ? ' with a signal' : ''}; load average ${load()}\n`);
  const callers: number[] = [];
  const owners: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    await ask<unknown>('mark');
    const c0 = cpuUs();
    for (let i = 0; i < CALLS; i++) await once();
    const caller = (cpuUs() - c0) / CALLS;
    const owner = (await ask<{ cpu: number }>('read')).cpu / CALLS;
    callers.push(caller);
    owners.push(owner);
    process.stdout.write(`  round ${r + 1}: CPU per call caller ${caller.toFixed(1)} µs, owner ${owner.toFixed(1)} µs\n`);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  process.stdout.write(`CPU per call, median of ${ROUNDS} rounds: caller ${median(callers).toFixed(1)} µs, owner ${median(owners).toFixed(1)} µs; load average ${load()}\n`);
  client.close();
  child.send('exit');
}
