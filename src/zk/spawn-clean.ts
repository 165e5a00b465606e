/**
 * Child processes that inherit no ZooKeeper sockets.
 *
 * The `zookeeper` npm package's C client opens its sockets without `SOCK_CLOEXEC` (its bundled
 * config.h leaves `SOCK_CLOEXEC_ENABLED` undefined), so every child spawned while a ZooKeeper
 * handle is open inherits that handle's socket. A long-lived child holding such a socket keeps the
 * TCP connection alive after the client closes it, and Node then spins on events for a closed fd
 * and delivers them to whatever handle gets that fd number next. So children are started through
 * bash, which closes every fd above 2 before exec-ing the real program (same pid).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

// No redirection on the loop: bash would park a copy of stderr on a high fd, the loop would close
// it, and the child's stderr would silently end up on /dev/null.
const CLOSE_FDS_AND_EXEC = 'for f in /proc/self/fd/*; do f=${f##*/}; if [ "$f" -gt 2 ]; then eval "exec $f>&-"; fi; done; exec "$@"';
const BASH = ['/bin/bash', '/usr/bin/bash'].find((b) => existsSync(b));

/** Spawns `cmd args` with no inherited fds above stdio; same options as `child_process.spawn`. */
export function spawnClean(cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  if (!BASH) return spawn(cmd, args, options);
  return spawn(BASH, ['-c', CLOSE_FDS_AND_EXEC, 'zkgate-child', cmd, ...args], options);
}
