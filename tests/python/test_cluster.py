"""Multi-process cluster tests: real raftnet daemons on loopback (tests/cluster/harness.py)."""
import glob
import os
import signal
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__ in tests/cluster)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
import harness  # noqa: E402

FAST = ["--tick-ms", "10", "--election-ticks", "20", "--heartbeat-ticks", "2"]


@unittest.skipUnless(os.access(harness.RAFTNET, os.X_OK), "raftnet not built")
class ClusterTest(unittest.TestCase):
    def make(self, n=3, args=(), token=None, spare=1, scheme="tcp", client_args=()):
        c = harness.Cluster(n, FAST + list(args), token=token, spare=spare, scheme=scheme,
                            client_args=client_args)
        self.addCleanup(c.cleanup)
        self.addCleanup(self.check_sanitizers, c)
        self.cluster = c
        return c

    def check_sanitizers(self, c):
        c.stop_all()
        self.assertEqual(c.sanitizer_reports(), [])

    def put(self, c, key, value, **kw):
        rc, out, err = c.client("put", key, value, **kw)
        self.assertEqual(rc, 0, "put %s failed: %s %s" % (key, out, err))
        return int(out.split()[1].split("=")[1])

    def scan(self, c, node=None, stale=False):
        rc, out, err = c.client("scan", urls=c.urls[node] if node else None, extra=["--stale"] if stale else [])
        self.assertEqual(rc, 0, err)
        return dict(line.split("\t", 1) for line in out.splitlines() if line)

    def get(self, c, key, node=None, stale=False):
        extra = ["--stale"] if stale else []
        urls = c.urls[node] if node else None
        rc, out, err = c.client("get", key, urls=urls, extra=extra)
        return rc, out.strip()

    def test_elect_replicate_read(self):
        c = self.make()
        c.start_all()
        leader = c.wait_leader()
        for k in range(10):
            self.put(c, "k%d" % k, "v%d" % k)
        # a write sent to a follower is forwarded
        follower = next(i for i in (1, 2, 3) if i != leader)
        rc, out, err = c.client("put", "viafollower", "yes", urls=c.urls[follower])
        self.assertEqual(rc, 0, err)
        # linearizable reads from every node (followers use ReadIndex through the leader)
        for i in (1, 2, 3):
            self.assertEqual(self.get(c, "viafollower", node=i), (0, "yes"))
        c.wait_converged([1, 2, 3])
        for i in (1, 2, 3):
            for k in range(10):
                self.assertEqual(self.get(c, "k%d" % k, node=i, stale=True), (0, "v%d" % k))
        self.assertEqual(self.get(c, "missing")[0], 3)
        st = c.status(leader)
        self.assertEqual(st["role"], "leader")
        self.assertEqual(len(st["members"]), 3)
        for line in st["members"]:  # every member acknowledged everything the leader has
            self.assertEqual(int(line.split("match=")[1]), int(st["last"]), line)
        self.assertIn("became leader", c.log(leader))

    def test_kill_leader_under_load_loses_nothing_acknowledged(self):
        c = self.make()
        c.start_all()
        leader = c.wait_leader()
        acked = {}
        lock = threading.Lock()
        stop = threading.Event()

        def writer(w):
            n = 0
            while not stop.is_set() and n < 400:
                key, val = "w%d_%d" % (w, n), "val-%d-%d" % (w, n)
                rc, out, err = c.client("put", key, val, timeout_ms=8000,
                                        extra=["--client-id", str(1000 + w), "--seq", str(n + 1)])
                if rc == 0:
                    with lock:
                        acked[key] = val
                n += 1

        def wait_acked(n, timeout):
            deadline = time.time() + timeout
            while time.time() < deadline and len(acked) < n:
                time.sleep(0.05)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        try:
            wait_acked(10, 20)  # load is running (the bound adapts to slow, e.g. sanitizer, builds)
            c.kill(leader, signal.SIGKILL)
            at_kill = len(acked)
            wait_acked(at_kill + 5, 20)  # the survivors elect a leader and go on
            c.start(leader)
            wait_acked(len(acked) + 10, 20)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        self.assertGreater(len(acked), at_kill + 10)
        c.wait_leader()
        c.wait_converged([1, 2, 3])
        for i in (1, 2, 3):
            have = self.scan(c, node=i, stale=True)
            for key, val in sorted(acked.items()):
                self.assertEqual(have.get(key), val, "node %d key %s" % (i, key))
        sample = sorted(acked)[:: max(1, len(acked) // 10)]
        for key in sample:
            self.assertEqual(self.get(c, key), (0, acked[key]))

    def test_paused_follower_catches_up(self):
        c = self.make()
        c.start_all()
        leader = c.wait_leader()
        f = next(i for i in (1, 2, 3) if i != leader)
        c.kill(f, signal.SIGSTOP)
        others = ",".join(c.urls[i] for i in (1, 2, 3) if i != f)
        for k in range(30):
            rc, _, err = c.client("put", "p%d" % k, str(k), urls=others)
            self.assertEqual(rc, 0, err)
        c.kill(f, signal.SIGCONT)
        c.wait_converged([1, 2, 3])
        for k in range(30):
            self.assertEqual(self.get(c, "p%d" % k, node=f, stale=True), (0, str(k)))

    def test_retried_write_is_applied_once(self):
        c = self.make()
        c.start_all()
        c.wait_leader()
        ses = ["--client-id", "4242", "--seq", "1"]
        rc, out1, err = c.client("put", "once", "first", extra=ses)
        self.assertEqual(rc, 0, err)
        rc, out2, err = c.client("put", "once", "first", extra=ses)  # the same bytes again
        self.assertEqual(rc, 0, err)
        self.assertEqual(out1, out2)  # same original result (same revision)
        rc, out3, err = c.client("put", "once", "second", extra=ses)  # same (client, seq): not applied
        self.assertEqual(out3, out1)
        self.assertEqual(self.get(c, "once"), (0, "first"))
        rev = int(out1.split()[1].split("=")[1])
        rc, _, err = c.client("get", "once")
        self.assertIn("update_rev=%d" % rev, err)
        rc, out4, err = c.client("put", "once", "third", extra=["--client-id", "4242", "--seq", "2"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.get(c, "once"), (0, "third"))
        # an older seq than the session's last is refused, not applied
        rc, out5, err = c.client("put", "once", "old", extra=ses)
        self.assertEqual(rc, 1, err)
        self.assertIn("SESSION_EXPIRED", err)
        self.assertEqual(self.get(c, "once"), (0, "third"))

    def test_torn_tail_repaired_and_corruption_refused(self):
        c = self.make()
        c.start_all()
        leader = c.wait_leader()
        for k in range(20):
            self.put(c, "t%d" % k, str(k))
        f = next(i for i in (1, 2, 3) if i != leader)
        c.wait_converged([1, 2, 3])
        c.kill(f, signal.SIGKILL)
        segs = sorted(glob.glob(os.path.join(c.data_dir(f), "log", "log-*.seg")))
        self.assertTrue(segs)
        # A crash in the middle of an append leaves the last record cut short. Simulate one: append the
        # first half of a copy of the last record (an entry that was never acknowledged).
        with open(segs[-1], "rb") as fh:
            data = fh.read()
        off, last = 32, None
        while off + 8 <= len(data):
            n = int.from_bytes(data[off:off + 4], "little")
            last = (off, 8 + n)
            off += 8 + n
        self.assertIsNotNone(last)
        rec = data[last[0]:last[0] + last[1]]
        with open(segs[-1], "ab") as fh:
            fh.write(rec[: len(rec) // 2])
        c.start(f)
        for k in range(20, 25):
            self.put(c, "t%d" % k, str(k))
        c.wait_converged([1, 2, 3])
        self.assertIn("repaired torn log tail", c.log(f))
        self.assertEqual(self.get(c, "t19", node=f, stale=True), (0, "19"))

        # now corrupt a record in the middle of the first segment: the node must refuse to start
        c.kill(f, signal.SIGKILL)
        segs = sorted(glob.glob(os.path.join(c.data_dir(f), "log", "log-*.seg")))
        with open(segs[0], "r+b") as fh:
            fh.seek(32 + 30)
            b = fh.read(1)
            fh.seek(32 + 30)
            fh.write(bytes([b[0] ^ 0xFF]))
        p = c.start(f)
        rc = p.wait(timeout=10)
        self.assertNotEqual(rc, 0)
        log = c.log(f)
        self.assertIn(os.path.basename(segs[0]), log)
        self.assertIn("offset", log)

    def test_wrong_token_is_unauthorized(self):
        c = self.make(token="s3cret")
        c.start_all()
        c.wait_leader()
        self.put(c, "tok", "ok")
        rc, out, err = c.client("put", "tok", "bad", token="wrong", timeout_ms=1000)
        self.assertNotEqual(rc, 0)
        self.assertIn("UNAUTHORIZED", err)
        self.assertEqual(self.get(c, "tok"), (0, "ok"))

    def test_sigterm_is_clean_and_restart_keeps_data(self):
        c = self.make()
        c.start_all()
        c.wait_leader()
        for k in range(5):
            self.put(c, "s%d" % k, str(k))
        for i in (1, 2, 3):
            c.kill(i, signal.SIGTERM)
            self.assertEqual(c.procs[i].returncode, 0)
            self.assertIn("stopped cleanly", c.log(i))
        c.start_all()
        c.wait_leader()
        for k in range(5):
            self.assertEqual(self.get(c, "s%d" % k), (0, str(k)))


    def test_snapshot_new_member_promote_remove(self):
        c = self.make(args=["--snapshot-entries", "20"])
        c.start_all()
        leader = c.wait_leader()
        for k in range(50):
            self.put(c, "m%d" % k, str(k))
        c.wait_converged([1, 2, 3])
        self.assertIn("snapshot taken", c.log(leader))
        st = c.status(leader)
        self.assertGreater(int(st["snapshot"]), 0)
        # a learner joins: the leader's log is compacted, so it must come through InstallSnapshot
        rc, out, err = c.client("admin", "add-learner", 4, c.urls[4])
        self.assertEqual(rc, 0, err)
        c.start(4, members=[1, 2, 3], extra=["--learner"])
        c.wait_converged([1, 2, 3, 4])
        self.assertIn("installed snapshot", c.log(4))
        self.assertIn("KiB chunks) to 4", c.log(leader))
        for k in (0, 25, 49):
            self.assertEqual(self.get(c, "m%d" % k, node=4, stale=True), (0, str(k)))
        st = c.status(4)
        self.assertIn("member id=4 url=%s learner" % c.urls[4], "\n".join(st["members"]))
        # promote it, then remove another member; the cluster keeps working
        rc, out, err = c.client("admin", "promote", 4)
        self.assertEqual(rc, 0, err)
        victim = next(i for i in (1, 2, 3) if i != leader)
        rc, out, err = c.client("admin", "remove", victim)
        self.assertEqual(rc, 0, err)
        c.kill(victim, signal.SIGTERM)
        del c.procs[victim]
        self.put(c, "after.remove".replace(".", "_"), "ok")
        rest = sorted(c.procs)
        c.wait_converged(rest)
        st = c.status(leader)
        members = "\n".join(st["members"])
        self.assertIn("member id=4 url=%s voter" % c.urls[4], members)
        self.assertNotIn("member id=%d " % victim, members)
        self.assertEqual(self.get(c, "after_remove", node=4, stale=True), (0, "ok"))
        # snapshot on demand
        rc, out, err = c.client("admin", "snapshot", urls=c.urls[4])
        self.assertEqual(rc, 0, err)

    def test_temp_nodes_expire(self):
        c = self.make()
        c.start_all()
        c.wait_leader()
        rc, out, err = c.client("put-temp", "eph", "x", 300)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.get(c, "eph"), (0, "x"))
        deadline = time.time() + 5
        while time.time() < deadline and self.get(c, "eph")[0] == 0:
            time.sleep(0.1)
        self.assertEqual(self.get(c, "eph")[0], 3)
        c.wait_converged([1, 2, 3])
        for i in (1, 2, 3):
            self.assertEqual(self.get(c, "eph", node=i, stale=True)[0], 3)

    @unittest.skipUnless(os.access("/usr/bin/openssl", os.X_OK), "openssl not available")
    def test_tls_cluster(self):
        probe = harness.Cluster(1)
        self.addCleanup(probe.cleanup)
        ca, cert, key = probe.make_certs()
        tls = ["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca]
        c = self.make(args=tls, scheme="tls+tcp", client_args=["--tls-ca", ca])
        c.start_all()
        c.wait_leader()
        self.put(c, "secure", "yes")
        c.wait_converged([1, 2, 3])
        for i in (1, 2, 3):
            self.assertEqual(self.get(c, "secure", node=i, stale=True), (0, "yes"))
        # A plain tcp:// client cannot talk to a TLS listener, nor can a TLS client that trusts another CA:
        # no handshake completes, so no request reaches a node and the client gives up at its deadline.
        other = harness.Cluster(1)
        self.addCleanup(other.cleanup)
        other_ca = other.make_certs()[0]
        plain = c.urls[1].replace("tls+tcp://", "tcp://")
        refused = [("plain tcp://", dict(urls=plain)),
                   ("wrong CA", dict(urls=c.urls[1], extra=["--tls-ca", other_ca]))]
        for what, kw in refused:
            for cmd in (("get", "secure"), ("put", "secure", "no")):
                rc, out, err = c.client(*cmd, timeout_ms=500, **kw)
                self.assertEqual(rc, 1, "%s %s: %s" % (what, cmd[0], err))
                self.assertEqual(out, "", "%s %s" % (what, cmd[0]))
                self.assertIn("UNAVAILABLE no answer within 500 ms", err, "%s %s" % (what, cmd[0]))
        # nothing was served: the puts changed nothing anywhere
        c.wait_converged([1, 2, 3])
        for i in (1, 2, 3):
            self.assertEqual(self.get(c, "secure", node=i, stale=True), (0, "yes"))

    def test_config_file_token_file_and_bad_flags(self):
        c = self.make(n=1)
        conf = os.path.join(c.dir, "node.conf")
        tokf = os.path.join(c.dir, "token")
        with open(tokf, "w") as f:
            f.write("file-token\n")
        with open(conf, "w") as f:
            f.write("# one-node cluster\nid = 1\nlisten = %s\npeers = 1=%s\ndata = %s\n"
                    "cluster-token-file = %s\nelection-ticks = 10\n" % (c.urls[1], c.urls[1], c.data_dir(1), tokf))
        log = open(c.log_path(1), "ab")
        c.procs[1] = harness.subprocess.Popen([harness.RAFTNET, "--config", conf], stdout=log, stderr=log)
        log.close()
        c.token = "file-token"
        self.assertEqual(c.wait_leader(), 1)
        self.put(c, "cfg", "ok")
        self.assertEqual(self.get(c, "cfg"), (0, "ok"))
        rc, _, err = c.client("get", "cfg", token="nope", timeout_ms=500)
        self.assertIn("UNAUTHORIZED", err)
        for bad in (["--id", "x"], ["--bogus", "1"], ["--id", "1", "--listen", c.urls[2]],
                    ["--config", os.path.join(c.dir, "missing.conf")]):
            r = harness.subprocess.run([harness.RAFTNET] + bad, capture_output=True, timeout=10)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertTrue(r.stderr.decode().startswith("raftnet:"), r.stderr)

    def test_leader_transfer(self):
        c = self.make()
        c.start_all()
        leader = c.wait_leader()
        self.put(c, "before", "1")
        target = next(i for i in (1, 2, 3) if i != leader)
        rc, out, err = c.client("admin", "transfer", target)
        self.assertEqual(rc, 0, err)
        deadline = time.time() + 10
        while time.time() < deadline:
            st = c.status(target)
            if st and st["role"] == "leader":
                break
            time.sleep(0.05)
        self.assertEqual(c.status(target)["role"], "leader")
        self.put(c, "after", "2")
        self.assertEqual(self.get(c, "before", node=target), (0, "1"))
        self.assertEqual(self.get(c, "after", node=leader), (0, "2"))
        # admin on a follower is refused with the leader's URL as a hint (the client follows it)
        # to the new leader, which refuses a transferee that is not a voter and stays leader
        rc, out, err = c.client("admin", "transfer", 99, urls=c.urls[leader])
        self.assertEqual(rc, 1, err)
        self.assertIn("CLIENT_REQ_ERROR transfer refused", err)
        self.assertEqual(c.status(target)["role"], "leader")

    def test_snapshot_transfer_resumes_after_receiver_kill(self):
        """A multi-chunk snapshot stream to a new member survives kill -9 of the receiver mid-transfer: the
        leader continues at the offset the restarted receiver acknowledges, not at byte 0."""
        import base64
        import re
        # background snapshots every 30 entries compact the log, so the new member needs the snapshot;
        # a longer election timeout keeps the leader in place while it reads several MiB back
        c = self.make(args=["--snapshot-entries", "30", "--election-ticks", "50"])
        c.start_all()
        c.wait_leader()
        values = {}
        lock = threading.Lock()
        errors = []

        def writer(w):
            for k in range(w, 48, 4):
                # random bytes in base64 (an argv-safe string): LZ4 finds nothing to pack
                v = base64.b64encode(os.urandom(72 * 1024)).decode()
                rc, out, err = c.client("put", "big%d" % k, v)
                with lock:
                    if rc == 0:
                        values["big%d" % k] = v
                    else:
                        errors.append(err)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        c.wait_converged([1, 2, 3])
        leader = c.wait_leader()
        snaps = glob.glob(os.path.join(c.data_dir(leader), "snap", "*.snap"))
        self.assertEqual(len(snaps), 1)
        total = os.path.getsize(snaps[0])
        self.assertGreater(total, 4 << 20)  # several 1 MiB chunks
        rc, out, err = c.client("admin", "add-learner", 4, c.urls[4])
        self.assertEqual(rc, 0, err)
        c.start(4, members=[1, 2, 3], extra=["--learner"])
        # kill -9 the receiver once it holds part of the file (at least one chunk, not all of it)
        part_glob = os.path.join(c.data_dir(4), "snap", "*.part")
        killed = False
        deadline = time.time() + 20
        while time.time() < deadline and not killed:
            for part in glob.glob(part_glob):
                try:
                    size = os.path.getsize(part)
                except OSError:
                    continue
                if size >= 1 << 20:
                    c.kill(4, signal.SIGSTOP)
                    killed = True
                    break
            time.sleep(0.001)
        self.assertTrue(killed, "the receiver never held a chunk:\n%s\n%s" % (c.log(leader)[-2000:], c.log(4)[-2000:]))
        # frozen first, killed once the leader noticed the stall: by then the transport has given up the
        # chunks that were on their way, so none arrives late after the restart and makes resuming moot
        # (and none is cut mid-write by the kill: under LeakSanitizer that sometimes reported the 1 MiB
        # message as leaked inside nng, a transport issue outside this test)
        deadline = time.time() + 10
        while time.time() < deadline and "to 4: no progress" not in c.log(leader):
            time.sleep(0.05)
        self.assertIn("to 4: no progress", c.log(leader))
        c.kill(4)
        self.assertNotIn("installed snapshot", c.log(4))
        parts = glob.glob(part_glob)
        self.assertEqual(len(parts), 1)
        held = os.path.getsize(parts[0])
        self.assertGreaterEqual(held, 1 << 20)
        self.assertLess(held, total)
        c.start(4, members=[1, 2, 3], extra=["--learner"])
        c.wait_converged([1, 2, 3, 4], timeout=25)
        self.assertIn("installed snapshot", c.log(4))
        # the receiver reopened its partial file, and the leader continued where the receiver stood
        self.assertRegex(c.log(4), r"resuming snapshot \d+ transfer at byte [1-9]")
        log = c.log(leader)
        resumed = [int(x) for x in re.findall(r"resuming snapshot \d+ to 4 at offset (\d+)", log)]
        self.assertTrue(resumed, "no resumed transfer in the leader's log:\n%s" % log[-2000:])
        self.assertGreaterEqual(max(resumed), 1 << 20)
        self.assertIn("delivered to 4", log)
        for k in (0, 17, 30, 47):
            self.assertEqual(self.get(c, "big%d" % k, node=4, stale=True), (0, values["big%d" % k]))
        self.assertEqual(len(self.scan(c, node=4, stale=True)), 48)

if __name__ == "__main__":
    unittest.main()
