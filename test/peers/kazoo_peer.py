#!/usr/bin/python3
"""Interop peer: Kazoo's stock Lock recipe driven from the command line.

Run with the Debian interpreter (python3-kazoo 2.8 lives in /usr/lib/python3/dist-packages,
which the python3 first on PATH may not see):

    /usr/bin/python3 test/peers/kazoo_peer.py lock <hosts> <lockPath> <rounds> <holdMs> <logFile> <peerId> [extraPatterns]
    /usr/bin/python3 test/peers/kazoo_peer.py inspect <hosts> <lockPath> [extraPatterns]
    /usr/bin/python3 test/peers/kazoo_peer.py session <hosts> <sessionTimeoutMs>

extraPatterns (optional, comma separated) is passed to Lock(extra_lock_patterns=...), e.g.
"-lock-" makes kazoo also treat Curator InterProcessMutex nodes as contenders. Without it
(the default, "stock" lock) kazoo only sees its own "__lock__" nodes.

Protocol (same as CuratorPeer.java, see README.md):
  stdout: "READY" once connected, "DONE" after the last round, exit 0.
  log:    "ENTER <peerId> <round>" after acquire, "EXIT <peerId> <round>" before release,
          each line one os.write() on an O_APPEND descriptor; rounds numbered from 1.
  exit codes: 0 ok, 1 error, 2 usage, 3 timed out waiting for the lock.
  PEER_WAIT_MS (default 30000) bounds each acquire().
  PEER_START_FILE (optional): after READY, wait until this file exists (polling every 5 ms, up
  to PEER_WAIT_MS) before round 1 -- a start gate to release several peers at once.

inspect prints, in kazoo's order:
  "NODE <childName>"        every child kazoo counts as a contender, sorted as kazoo sorts them
  "CONTENDER <identifier>"  Lock.contenders() (node data decoded as UTF-8, same order)
NOTE: inspect (like Lock.contenders()) creates <lockPath> if it does not exist.

How kazoo 2.8 (kazoo/recipe/lock.py) names and orders lock nodes -- verified from the
installed source:
  * Lock._NODE_NAME = "__lock__"; each Lock object computes once
        prefix = uuid.uuid4().hex + "__lock__"      (32 lowercase hex chars, no dashes)
    and creates  <lockPath>/<prefix>  EPHEMERAL|SEQUENTIAL with data = identifier.encode("utf-8"),
    so a node is named  "<32 hex>__lock__<10-digit seq>", e.g.
        "0f8c1b2e9d7a4c55b1e3a2f4d6c8e0a1__lock__0000000007".
    The same uuid prefix is reused for every acquire() of that Lock object. The parent path is
    created with ensure_path() (plain PERSISTENT nodes, no container).
  * Which children count: Lock._EXCLUDE_NAMES = ["__lock__"] plus extra_lock_patterns; a child is
    a contender iff  re.search(r"(?:__lock__|<extra...>)(-?\\d{10})$", child)  matches
    (the names are NOT regex-escaped). Anything else in the directory is ignored entirely: the
    stock Lock does not see "__rlock__" nodes, nor Curator's "_c_<uuid>-lock-<seq>" nodes
    (unless extra_lock_patterns=["-lock-"]).
    (ReadLock: node name "__rlock__", excludes only "__lock__"; WriteLock: "__lock__", excludes
    "__lock__" and "__rlock__"; contenders() uses exclude_names | {_NODE_NAME}.)
  * Order: sorted(matches, key=lambda m: m.groups()) -- i.e. by the captured sequence STRING
    (lexicographic, "-?" plus 10 digits), stable, ties keep get_children() order. For normal
    non-negative 10-digit sequences this equals numeric order; the uuid part never matters.
  * A waiter watches (get with watch) its immediate predecessor in that order; the lock is
    held when no contender sorts before our node.
"""
import os
import random
import re
import signal
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout
from kazoo.recipe.lock import Lock

WAIT_S = float(os.environ.get("PEER_WAIT_MS", "30000")) / 1000.0


def usage():
    sys.stderr.write(
        "usage:\n"
        "  kazoo_peer.py lock <hosts> <lockPath> <rounds> <holdMs> <logFile> <peerId> [extraPatterns]\n"
        "  kazoo_peer.py inspect <hosts> <lockPath> [extraPatterns]\n"
        "  kazoo_peer.py session <hosts> <sessionTimeoutMs>\n"
    )
    sys.exit(2)


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


def append(log_file, line):
    """One whole line, one write(2) on an O_APPEND descriptor."""
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def await_start_gate():
    gate = os.environ.get("PEER_START_FILE")
    if not gate:
        return
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise RuntimeError("start gate %s did not appear within %.1f s" % (gate, WAIT_S))
        time.sleep(0.005)


def extra_patterns(arg):
    if not arg:
        return ()
    return tuple(p for p in arg.split(",") if p)


def connect(hosts):
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    return client


def close(client):
    try:
        client.stop()
        client.close()
    except Exception:  # best effort
        pass


def lock_mode(argv):
    if len(argv) < 7:
        usage()
    hosts, lock_path = argv[1], argv[2]
    rounds, hold_ms = int(argv[3]), int(argv[4])
    log_file, peer_id = argv[5], argv[6]
    extras = extra_patterns(argv[7] if len(argv) > 7 else "")

    client = connect(hosts)
    try:
        lock = client.Lock(lock_path, identifier=peer_id, extra_lock_patterns=extras) \
            if extras else client.Lock(lock_path, identifier=peer_id)
        say("READY")
        await_start_gate()
        for rnd in range(1, rounds + 1):
            try:
                got = lock.acquire(timeout=WAIT_S)
            except LockTimeout:
                got = False
            if not got:
                sys.stderr.write("TIMEOUT %s %d acquiring %s\n" % (peer_id, rnd, lock_path))
                return 3
            try:
                append(log_file, "ENTER %s %d" % (peer_id, rnd))
                time.sleep(hold_ms / 1000.0)
                append(log_file, "EXIT %s %d" % (peer_id, rnd))
            finally:
                lock.release()
            time.sleep(random.randint(0, 5) / 1000.0)
        say("DONE")
        return 0
    finally:
        close(client)


def kazoo_sorted_nodes(client, lock):
    """Children of lock.path that kazoo counts as contenders, in kazoo's order.

    Mirrors Lock.contenders() in kazoo 2.8 exactly (same regex, same sort key)."""
    children = client.get_children(lock.path)
    pattern = re.compile(
        r"(?:{patterns})(-?\d{{10}})$".format(
            patterns="|".join(lock._exclude_names | {lock._NODE_NAME})
        )
    )
    matches = [m for m in (pattern.search(c) for c in children) if m is not None]
    return [m.string for m in sorted(matches, key=lambda m: m.groups())]


def inspect_mode(argv):
    if len(argv) < 3:
        usage()
    hosts, lock_path = argv[1], argv[2]
    extras = extra_patterns(argv[3] if len(argv) > 3 else "")
    client = connect(hosts)
    try:
        lock = Lock(client, lock_path, extra_lock_patterns=extras)
        contenders = lock.contenders()  # ensures the path exists
        for node in kazoo_sorted_nodes(client, lock):
            say("NODE " + node)
        for c in contenders:
            say("CONTENDER " + c)
        return 0
    finally:
        close(client)


def session_mode(argv):
    """Holds one session and reports its connection states, to time failover against the gateway.

    Hosts are tried in the given order (randomize_hosts=False) so a test can put the member it
    is about to fault first. Prints "READY <sessionIdHex>" once connected, then
    "STATE <LOST|SUSPENDED|CONNECTED> <epochMs>" on every change, until SIGTERM."""
    if len(argv) < 3:
        usage()
    hosts, timeout_s = argv[1], int(argv[2]) / 1000.0
    client = KazooClient(hosts=hosts, timeout=timeout_s, randomize_hosts=False)

    def on_state(state):
        say("STATE %s %d" % (state, int(time.time() * 1000)))

    client.add_listener(on_state)
    client.start(timeout=30)
    say("READY %x" % client.client_id[0])
    while True:
        time.sleep(3600)


def main(argv):
    if len(argv) < 1:
        usage()
    mode = argv[0]
    try:
        if mode == "lock":
            return lock_mode(argv)
        if mode == "inspect":
            return inspect_mode(argv)
        if mode == "session":
            return session_mode(argv)
        usage()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report and fail
        sys.stderr.write("ERROR %r\n" % (e,))
        return 1
    return 2


if __name__ == "__main__":
    # SIGTERM -> SystemExit, so the finally blocks close the session and our ephemeral lock
    # node disappears at once instead of after the session timeout.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main(sys.argv[1:]))
