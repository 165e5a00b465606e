"""zkgate's REST API from Python, standard library only (urllib, json, threading).

    from zkgate import Client
    zk = Client.from_env()          # ZKGATE_URL (default http://127.0.0.1:8080), ZKGATE_API_KEY
    zk.create("/config/app", b"color=red", create_parents=True)
    with zk.lock("/cron/nightly", wait_ms=0) as hold:     # a lease of its own, kept alive meanwhile
        run_job(hold["fencingToken"])

Every refusal raises ZkgateError carrying zkgate's stable error code (docs/errors.md). Data is
bytes both ways (it travels base64-encoded).
"""
import base64
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

__all__ = ["Client", "Lease", "ZkgateError"]

_ENDED = ("LEASE_NOT_FOUND", "LEASE_EXPIRED", "LEASE_REVOKED", "LEASE_LOST")


class ZkgateError(Exception):
    """A refusal or failure: `code` (NO_NODE, LOCK_NOT_ACQUIRED …), HTTP `status` (0: unreachable), `details`."""

    def __init__(self, code, message, status=0, details=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.details = details or {}


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def _bytes(node):
    if node is not None and "data" in node:
        node = dict(node)
        if node.pop("encoding", "utf8") == "base64":
            node["data"] = base64.b64decode(node["data"])
        else:
            node["data"] = node["data"].encode()
    return node


class Lease:
    """A granted lease. keep_alive() refreshes it; start_keepalive() does so from a daemon thread
    every third of the TTL; revoke() ends it and deletes what it owns. Usable as a context manager
    (kept alive inside, revoked on exit)."""

    def __init__(self, client, info):
        self._client = client
        self.id = info["id"]
        self.ttl_ms = info["ttlMs"]
        self.info = info
        self.lost = None  # the ZkgateError that stopped the keepalive thread, if any
        self._stop = threading.Event()
        self._thread = None

    def keep_alive(self):
        self.info = self._client.call("POST", f"/v1/leases/{urllib.parse.quote(self.id, safe='')}/keepalive")
        return self.info

    def refresh(self):
        """The lease's current state (state, remainingMs, owned …)."""
        self.info = self._client.call("GET", f"/v1/leases/{urllib.parse.quote(self.id, safe='')}")
        return self.info

    def start_keepalive(self):
        """Keeps the lease alive from a daemon thread until stop_keepalive() or revoke(); the
        thread stops at the first refusal and leaves it in `lost`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"zkgate-keepalive-{self.id}", daemon=True)
            self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                self.keep_alive()
            except ZkgateError as e:
                if e.code in _ENDED:
                    self.lost = e
                    return
                # unreachable or unavailable for a moment: try again at the next tick

    def stop_keepalive(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def revoke(self):
        """Ends the lease (what it owns is deleted now); a lease already ended is fine."""
        self.stop_keepalive()
        try:
            self._client.call("DELETE", f"/v1/leases/{urllib.parse.quote(self.id, safe='')}")
        except ZkgateError as e:
            if e.code not in _ENDED:
                raise

    def __enter__(self):
        return self.start_keepalive()

    def __exit__(self, *exc):
        self.revoke()
        return False


class Client:
    """zkgate over REST. `timeout` (seconds) bounds each HTTP call; waits are added to it."""

    def __init__(self, base_url="http://127.0.0.1:8080", api_key=None, tenant=None, timeout=30.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.tenant = tenant
        self.timeout = timeout

    @classmethod
    def from_env(cls):
        """A client for ZKGATE_URL (default http://127.0.0.1:8080) with ZKGATE_API_KEY / ZKGATE_TENANT if set."""
        return cls(os.environ.get("ZKGATE_URL") or "http://127.0.0.1:8080", os.environ.get("ZKGATE_API_KEY") or None, os.environ.get("ZKGATE_TENANT") or None)

    @staticmethod
    def url(prefix, path):
        return prefix + ("" if path == "/" else "/".join(urllib.parse.quote(p, safe="") for p in path.split("/")))

    def request(self, method, path, body=None, query=None, wait_ms=0):
        """One HTTP call: (status, decoded JSON body or None, headers). Raises ZkgateError UNAVAILABLE when unreachable."""
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.tenant:
            headers["Zkgate-Tenant"] = self.tenant
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout + wait_ms / 1000) as res:
                status, text, hdrs = res.status, res.read(), res.headers
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read(), e.headers
        except (urllib.error.URLError, OSError) as e:
            raise ZkgateError("UNAVAILABLE", f"cannot reach {url}: {e}") from e
        return status, (json.loads(text) if text else None), {k.lower(): v for k, v in hdrs.items()}

    def call(self, method, path, body=None, query=None, wait_ms=0):
        """One call that must succeed; returns the decoded body. Raises ZkgateError."""
        status, answer, _ = self.request(method, path, body, query, wait_ms)
        if status >= 400:
            raise self._problem(status, answer)
        return answer

    @staticmethod
    def _problem(status, answer):
        answer = answer if isinstance(answer, dict) else {}
        return ZkgateError(answer.get("code", f"HTTP_{status}"), answer.get("detail", f"HTTP {status}"), status, answer.get("details"))

    @staticmethod
    def _lease_id(lease):
        return lease.id if isinstance(lease, Lease) else lease

    # -- znodes ---------------------------------------------------------------------------------

    def get(self, path):
        """{"path", "data" (bytes), "stat"}. Raises NO_NODE."""
        return _bytes(self.call("GET", self.url("/v1/nodes", path), query={"encoding": "base64"}))

    def exists(self, path):
        """The stat, or None when the node does not exist."""
        try:
            return self.get(path)["stat"]
        except ZkgateError as e:
            if e.code == "NO_NODE":
                return None
            raise

    def children(self, path, with_stats=False):
        """Child names in order (with_stats: [{"name", "stat"}])."""
        listing = self.call("GET", self.url("/v1/children", path), query={"stat": "true"} if with_stats else None)
        return listing["children"] if with_stats else [c["name"] for c in listing["children"]]

    def create(self, path, data=b"", mode=None, ttl_ms=None, create_parents=False, lease=None):
        """Creates a node; returns its path (sequential modes add a 10-digit suffix). Ephemeral modes need a lease.
        Raises NODE_EXISTS, NO_NODE (missing parent: create_parents=True), LEASE_REQUIRED …"""
        body = {"data": _b64(data), "encoding": "base64"}
        if mode:
            body["mode"] = mode
        if ttl_ms is not None:
            body["ttlMs"] = ttl_ms
        if create_parents:
            body["createParents"] = True
        if lease is not None:
            body["leaseId"] = self._lease_id(lease)
        return self.call("POST", self.url("/v1/nodes", path), body)["path"]

    def set(self, path, data, version=None):
        """Replaces the data (with `version`: only at that version); returns the new stat. Raises BAD_VERSION."""
        body = {"data": _b64(data), "encoding": "base64"}
        if version is not None:
            body["version"] = version
        return self.call("PUT", self.url("/v1/nodes", path), body)["stat"]

    def delete(self, path, version=None, recursive=False):
        query = {}
        if version is not None:
            query["version"] = version
        if recursive:
            query["recursive"] = "true"
        self.call("DELETE", self.url("/v1/nodes", path), query=query or None)

    # -- leases ---------------------------------------------------------------------------------

    def grant_lease(self, ttl_ms):
        """A new Lease; `with zk.grant_lease(10000) as lease:` keeps it alive and revokes it at the end."""
        return Lease(self, self.call("POST", "/v1/leases", {"ttlMs": ttl_ms}))

    # -- locks ----------------------------------------------------------------------------------

    def acquire(self, path, lease, wait_ms=0, data=None, flavour="curator"):
        """Takes the fair lock for `lease`, waiting up to wait_ms (0: try once); returns the hold
        ({"node", "fencingToken", …}). Raises LOCK_NOT_ACQUIRED (details["holder"]) when the wait ends."""
        body = {"leaseId": self._lease_id(lease), "waitMs": wait_ms, "flavour": flavour}
        if data is not None:
            body.update(data=_b64(data), encoding="base64")
        return self.call("POST", self.url("/v1/locks", path), body, wait_ms=wait_ms)

    def release(self, path, lease, node):
        """Releases a hold; False when the node was not (or no longer) this lease's."""
        return self.call("DELETE", self.url("/v1/locks", path), query={"leaseId": self._lease_id(lease), "node": node})["released"]

    def inspect_lock(self, path):
        """{"holder": … or None, "queue": [...]}"""
        return self.call("GET", self.url("/v1/locks", path))

    @contextmanager
    def lock(self, path, wait_ms=0, ttl_ms=10000):
        """Holds the lock inside the `with` block, on a lease of its own kept alive meanwhile;
        yields the hold (pass hold["fencingToken"] to what you protect)."""
        with self.grant_lease(ttl_ms) as lease:
            hold = self.acquire(path, lease, wait_ms)
            try:
                yield hold
            finally:
                self.release(path, lease, hold["node"])

    # -- elections ------------------------------------------------------------------------------

    def campaign(self, path, lease, value=b"", wait_ms=0):
        """Campaigns with `value`, waiting up to wait_ms; returns {"leader": True, "node", "term"}. Raises NOT_ELECTED."""
        body = {"leaseId": self._lease_id(lease), "value": _b64(value), "encoding": "base64", "waitMs": wait_ms}
        return self.call("POST", self.url("/v1/elections", path), body, wait_ms=wait_ms)

    def leader(self, path):
        """{"leader": {"node", "value", "term"} or None, "index"}."""
        return self.call("GET", self.url("/v1/elections", path))

    def wait_leader_change(self, path, after, wait_ms=30000):
        """Long-poll: the leader state once it differs from the answer with index `after`, else {"unchanged": True}."""
        return self.call("GET", self.url("/v1/elections", path), query={"wait": wait_ms, "after": after}, wait_ms=wait_ms)

    def proclaim(self, path, lease, node, value):
        body = {"leaseId": self._lease_id(lease), "node": node, "value": _b64(value), "encoding": "base64"}
        return self.call("PUT", self.url("/v1/elections", path), body)

    def resign(self, path, lease, node):
        """Leaves the election (idempotent); True when this call removed the candidacy."""
        return self.call("DELETE", self.url("/v1/elections", path), query={"leaseId": self._lease_id(lease), "node": node})["resigned"]

    # -- watch (long-poll) ----------------------------------------------------------------------

    def poll(self, path, index="0", wait_ms=30000):
        """One long-poll: {"changed", "index", "node" (None while missing)}. Answers at once when the
        node's state differs from `index` ("0": nothing seen), else on a change, else after wait_ms."""
        status, answer, headers = self.request("GET", self.url("/v1/nodes", path), query={"wait": wait_ms, "index": index, "encoding": "base64"}, wait_ms=wait_ms)
        if status != 200 and not (status == 404 and (answer or {}).get("code") == "NO_NODE"):
            raise self._problem(status, answer)
        return {
            "changed": headers.get("x-zkgate-unchanged") != "true",
            "index": headers.get("x-zkgate-index", index),
            "node": _bytes(answer) if status == 200 else None,
        }

    def watch(self, path, wait_ms=30000):
        """Yields the node's current state, then every new state (None while it does not exist)."""
        index, first = "0", True
        while True:
            seen = self.poll(path, index, wait_ms)
            index = seen["index"]
            if seen["changed"] or first:
                first = False
                yield seen["node"]
