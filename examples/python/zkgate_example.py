#!/usr/bin/python3
"""zkgate over gRPC from Python: take a lock, observe an election, receive watch events.

Needs only Debian's python3-grpcio and python3-grpc-tools: the stubs are generated from the
gateway's proto/ files into a temporary directory at start, removed again at exit, so nothing
generated is kept. Everything it creates (under --prefix) is deleted at the end, so it can run again.

    /usr/bin/python3 examples/python/zkgate_example.py [HOST:PORT] [--api-key KEY] [--prefix /example]

Each step prints one JSON line (the test that runs this example reads them).
"""
import argparse
import atexit
import importlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


def generate_stubs():
    """Runs protoc on proto/zkgate/v1/*.proto into a temp dir and imports the modules."""
    out = tempfile.mkdtemp(prefix="zkgate-stubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)  # the modules stay loaded
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    files = sorted(
        os.path.join("zkgate", "v1", f)
        for f in os.listdir(os.path.join(PROTO_DIR, "zkgate", "v1"))
        if f.endswith(".proto")
    )
    args = ["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    names = ["znodes", "leases", "locks", "elections", "watch"]
    return {n: (importlib.import_module(f"zkgate.v1.{n}_pb2"), importlib.import_module(f"zkgate.v1.{n}_pb2_grpc")) for n in names}


def say(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", nargs="?", default="127.0.0.1:9090")
    ap.add_argument("--api-key", default=os.environ.get("ZKGATE_API_KEY"))
    ap.add_argument("--prefix", default="/example")
    a = ap.parse_args()
    pb = generate_stubs()
    (znodes_pb2, znodes_grpc), (leases_pb2, leases_grpc) = pb["znodes"], pb["leases"]
    (locks_pb2, locks_grpc), (elections_pb2, elections_grpc) = pb["locks"], pb["elections"]
    watch_pb2, watch_grpc = pb["watch"]

    md = [("authorization", f"Bearer {a.api_key}")] if a.api_key else []
    channel = grpc.insecure_channel(a.target)
    znodes = znodes_grpc.ZnodesStub(channel)
    leases = leases_grpc.LeasesStub(channel)
    locks = locks_grpc.LocksStub(channel)
    elections = elections_grpc.ElectionsStub(channel)
    watch = watch_grpc.WatchStub(channel)
    p = a.prefix

    # A lease owns everything below; a KeepAlive stream keeps it alive and reports its loss.
    lease = leases.Grant(leases_pb2.GrantRequest(ttl_ms=10000), metadata=md)
    other = leases.Grant(leases_pb2.GrantRequest(ttl_ms=10000), metadata=md)
    say("lease", id=lease.id, state=leases_pb2.LeaseState.Name(lease.state))
    keepalives = queue.Queue()
    ka = leases.KeepAlive(iter(keepalives.get, None), metadata=md)
    keepalives.put(leases_pb2.KeepAliveRequest(id=lease.id))
    first = next(ka)
    say("keepalive", type=leases_pb2.KeepAliveType.Name(first.type), state=leases_pb2.LeaseState.Name(first.lease.state))

    # Lock: acquire (the call's timeout is the wait), a second lease's try fails, then release.
    hold = locks.Acquire(locks_pb2.AcquireRequest(path=f"{p}/lock", lease_id=lease.id), timeout=5, metadata=md)
    say("acquired", node=hold.node, fencing_token=hold.fencing_token)
    try:
        # The gateway ends the wait a margin before the timeout and answers ABORTED (LOCK_NOT_ACQUIRED).
        locks.Acquire(locks_pb2.AcquireRequest(path=f"{p}/lock", lease_id=other.id), timeout=3, metadata=md)
        say("second_acquire", code="OK")
    except grpc.RpcError as e:
        code = dict(e.trailing_metadata() or ()).get("zkgate-error-code", "")
        say("second_acquire", code=e.code().name, zkgate_code=code)
    seen = locks.Inspect(locks_pb2.InspectRequest(path=f"{p}/lock"), metadata=md)
    say("inspect", holder=seen.holder.node, queue=len(seen.queue))
    released = locks.Release(locks_pb2.ReleaseRequest(path=f"{p}/lock", node=hold.node, lease_id=lease.id), metadata=md)
    say("released", released=released.released, reason=released.reason)

    # Election: observe in a thread (current state first, then every change, "no leader" too).
    states = queue.Queue()
    observe = elections.Observe(elections_pb2.LeaderRequest(path=f"{p}/election"), metadata=md)

    def observe_loop():
        try:
            for s in observe:
                states.put(s.leader.value.decode() if s.HasField("leader") else None)
        except grpc.RpcError:
            pass

    threading.Thread(target=observe_loop, daemon=True).start()
    say("observed", leader=states.get(timeout=10))
    won = elections.Campaign(elections_pb2.CampaignRequest(path=f"{p}/election", lease_id=lease.id, value=b"worker-1"), timeout=5, metadata=md)
    say("campaigned", node=won.node, term=won.term)
    say("observed", leader=states.get(timeout=10))
    elections.Resign(elections_pb2.ResignRequest(path=f"{p}/election", node=won.node, lease_id=lease.id), metadata=md)
    say("observed", leader=states.get(timeout=10))
    observe.cancel()

    # Watch: one stream, a subscription by client id; events carry the data and the zxid.
    requests = queue.Queue()
    events = watch.Watch(iter(requests.get, None), metadata=md)
    requests.put(watch_pb2.WatchRequest(subscribe=watch_pb2.Subscribe(id="cfg", path=f"{p}/config")))

    def next_of(kind):
        for m in events:
            if m.type == kind:
                return m
        raise SystemExit("watch stream ended")

    subscribed = next_of(watch_pb2.WATCH_RESPONSE_TYPE_SUBSCRIBED)
    current = next_of(watch_pb2.WATCH_RESPONSE_TYPE_EVENT)
    say("watch", id=subscribed.id, type=current.event.type, exists=current.event.HasField("stat"))
    znodes.Create(znodes_pb2.CreateRequest(path=f"{p}/config", data=b"color=red"), metadata=md)
    created = next_of(watch_pb2.WATCH_RESPONSE_TYPE_EVENT).event
    say("watch", id="cfg", type=created.type, data=created.data.decode(), zxid=created.zxid)
    znodes.Set(znodes_pb2.SetRequest(path=f"{p}/config", data=b"color=blue"), metadata=md)
    changed = next_of(watch_pb2.WATCH_RESPONSE_TYPE_EVENT).event
    say("watch", id="cfg", type=changed.type, data=changed.data.decode(), zxid=changed.zxid)
    requests.put(watch_pb2.WatchRequest(unsubscribe=watch_pb2.Unsubscribe(id="cfg")))
    say("unsubscribed", id=next_of(watch_pb2.WATCH_RESPONSE_TYPE_UNSUBSCRIBED).id)
    requests.put(None)

    keepalives.put(None)
    for l in (lease, other):
        leases.Revoke(leases_pb2.LeaseRequest(id=l.id), metadata=md)
    # Leave nothing behind, so the example can run again (single deletes: a write key may do them).
    for path in (f"{p}/config", f"{p}/lock", f"{p}/election", p):
        try:
            znodes.Delete(znodes_pb2.DeleteRequest(path=path), metadata=md)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
    say("done")


if __name__ == "__main__":
    main()
