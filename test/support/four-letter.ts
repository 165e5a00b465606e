/**
 * ZooKeeper "four-letter word" admin commands over plain TCP (no `nc` needed).
 *
 * The server answers one command per connection and then closes the socket, so the whole
 * answer is whatever arrives before the close.
 */
import { connect } from 'node:net';

/**
 * Sends one four-letter word (`ruok`, `srvr`, `mntr`, `cons`, `dump`, `wchc`, `wchs`, …) to
 * the ZooKeeper server on `127.0.0.1:port` and resolves with its complete answer.
 *
 * Needs `4lw.commands.whitelist` to include the command (the harness whitelists `*`); a
 * command that is not whitelisted is answered with "… is not executed because it is not in
 * the whitelist.". A server that is up but not serving (e.g. an ensemble member without
 * quorum) answers most commands other than `ruok` with
 * "This ZooKeeper instance is not currently serving requests".
 *
 * @param port - the server's client port.
 * @param cmd - the four-letter word.
 * @param timeoutMs - give up (reject) when the answer has not completed in this time.
 * @param host - the server's address. @defaultValue "127.0.0.1"
 * @returns the answer text (possibly empty if the server closed without answering).
 * @throws Error on connection failure (e.g. `ECONNREFUSED`) or timeout.
 */
export function fourLetter(port: number, cmd: string, timeoutMs = 3000, host = '127.0.0.1'): Promise<string> {
  if (!/^[a-z]{4}$/.test(cmd)) {
    return Promise.reject(new Error(`fourLetter: "${cmd}" is not a four-letter word`));
  }
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const sock = connect({ host, port });
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () => finish(new Error(`fourLetter ${cmd} to ${host}:${port}: no complete answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write(cmd));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('error', (e: Error) => finish(new Error(`fourLetter ${cmd} to ${host}:${port}: ${e.message}`)));
  });
}

/**
 * Like {@link fourLetter} but never rejects: resolves with `''` when the server is not
 * reachable or does not answer in time. Handy for polling.
 */
export async function tryFourLetter(port: number, cmd: string, timeoutMs = 1000, host = '127.0.0.1'): Promise<string> {
  try {
    return await fourLetter(port, cmd, timeoutMs, host);
  } catch {
    return '';
  }
}

/** The role a server reports in its `srvr` answer. */
export type ZkMode = 'standalone' | 'leader' | 'follower' | 'observer';

/**
 * Asks `srvr` and extracts the `Mode:` line.
 * @returns the mode, or `undefined` when the server is down, not serving, or gave no mode.
 */
export async function serverMode(port: number, timeoutMs = 1000, host = '127.0.0.1'): Promise<ZkMode | undefined> {
  const answer = await tryFourLetter(port, 'srvr', timeoutMs, host);
  const m = /^Mode: (standalone|leader|follower|observer)\s*$/m.exec(answer);
  return m ? (m[1] as ZkMode) : undefined;
}

/**
 * Parses a `mntr` answer (`key<TAB>value` lines) into a map. Numeric values stay strings;
 * convert with `Number()` where needed.
 */
export function parseMntr(answer: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of answer.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1).trim());
  }
  return out;
}
