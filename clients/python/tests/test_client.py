"""The Python client against a real gateway: ZKGATE_URL=… python3 -m unittest discover -s clients/python/tests"""
import os
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from zkgate import Client, ZkgateError  # noqa: E402


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.zk = Client.from_env()
        cls.root = f"/py-client-{uuid.uuid4().hex[:8]}"

    @classmethod
    def tearDownClass(cls):
        try:
            cls.zk.delete(cls.root, recursive=True)
        except ZkgateError:
            pass

    def refused(self, code, fn, *args, **kw):
        with self.assertRaises(ZkgateError) as caught:
            fn(*args, **kw)
        self.assertEqual(caught.exception.code, code)
        return caught.exception

    def test_znodes(self):
        p = f"{self.root}/znodes"
        self.assertEqual(self.zk.create(f"{p}/cfg", b"a\x00b\xff", create_parents=True), f"{p}/cfg")
        node = self.zk.get(f"{p}/cfg")
        self.assertEqual(node["data"], b"a\x00b\xff")
        self.assertEqual(self.zk.set(f"{p}/cfg", "v1", version=0)["version"], 1)
        self.refused("BAD_VERSION", self.zk.set, f"{p}/cfg", "v2", version=0)
        seq = self.zk.create(f"{p}/q/job-", mode="persistent_sequential", create_parents=True)
        self.assertRegex(seq, r"/q/job-\d{10}$")
        self.assertEqual(self.zk.children(p), ["cfg", "q"])
        self.assertIsNone(self.zk.exists(f"{p}/nope"))
        e = self.refused("NO_NODE", self.zk.create, f"{p}/a/b")
        self.assertEqual(e.details.get("parent"), f"{p}/a")
        self.refused("NOT_EMPTY", self.zk.delete, f"{p}/q")
        self.zk.delete(f"{p}/q", recursive=True)
        self.assertEqual(self.zk.children(p), ["cfg"])

    def test_lease_keepalive_thread_and_revoke(self):
        p = f"{self.root}/leases"
        self.zk.create(p, create_parents=True)
        with self.zk.grant_lease(1500) as lease:
            self.zk.create(f"{p}/eph", b"me", mode="ephemeral", lease=lease)
            time.sleep(3.5)  # more than twice the TTL: only the keepalive thread keeps it
            self.assertEqual(lease.refresh()["state"], "active")
            self.assertIsNotNone(self.zk.exists(f"{p}/eph"))
        self.assertIsNone(self.zk.exists(f"{p}/eph"), "revoked with the with-block")
        self.refused("LEASE_REVOKED", lease.keep_alive)

    def test_locks(self):
        p = f"{self.root}/lock"
        with self.zk.grant_lease(10000) as a, self.zk.grant_lease(10000) as b:
            hold = self.zk.acquire(p, a, wait_ms=1000)
            e = self.refused("LOCK_NOT_ACQUIRED", self.zk.acquire, p, b, wait_ms=0)
            self.assertEqual(e.details.get("holder"), hold["node"])
            self.assertEqual(self.zk.inspect_lock(p)["holder"]["node"], hold["node"])
            self.assertTrue(self.zk.release(p, a, hold["node"]))
            self.assertFalse(self.zk.release(p, a, hold["node"]))
        with self.zk.lock(p, wait_ms=1000) as second:
            self.assertGreater(int(second["fencingToken"]), int(hold["fencingToken"]))
        self.assertIsNone(self.zk.inspect_lock(p)["holder"])

    def test_elections(self):
        p = f"{self.root}/election"
        with self.zk.grant_lease(10000) as a, self.zk.grant_lease(10000) as b:
            won = self.zk.campaign(p, a, "host-a", wait_ms=1000)
            self.assertTrue(won["leader"])
            self.assertEqual(self.zk.leader(p)["leader"]["value"], "host-a")
            self.zk.proclaim(p, a, won["node"], "host-a:2")
            self.assertEqual(self.zk.leader(p)["leader"]["value"], "host-a:2")
            self.refused("NOT_ELECTED", self.zk.campaign, p, b, "host-b", wait_ms=0)
            before = self.zk.leader(p)["index"]
            self.assertTrue(self.zk.resign(p, a, won["node"]))
            self.assertIsNone(self.zk.wait_leader_change(p, before, wait_ms=5000)["leader"])
            self.assertTrue(self.zk.campaign(p, b, "host-b", wait_ms=1000)["leader"])

    def test_watch(self):
        p = f"{self.root}/watch/cfg"
        self.zk.create(p, "v1", create_parents=True)
        first = self.zk.poll(p, "0", 5000)
        self.assertTrue(first["changed"])
        self.assertEqual(first["node"]["data"], b"v1")
        self.assertFalse(self.zk.poll(p, first["index"], 1000)["changed"])
        seen = []
        for node in self.zk.watch(p, wait_ms=5000):
            seen.append(None if node is None else node["data"])
            if len(seen) == 1:
                threading.Timer(0.2, self.zk.set, (p, "v2")).start()
            elif len(seen) == 2:
                threading.Timer(0.2, self.zk.delete, (p,)).start()
            else:
                break
        self.assertEqual(seen, [b"v1", b"v2", None])


if __name__ == "__main__":
    unittest.main()
