"""The `tarn` command-line tool, tarn_status() and the cluster client through SQL.

Without a daemon: the "no leader reachable" error against dead ports, tarn_status() rows for unreachable
members, the CLI's one-line errors, `tarn bench --embedded` (in memory and with --data). With build/raftnet:
raftnet's flag errors, a real 3-node loopback cluster started by `tarn cluster start` (once for the class),
status through the CLI and tarn_status(), an SQL round trip through `tarn sql`, short `tarn bench` runs of
every single-request kind and txn, also given only a follower's URL. Every raftnet process is stopped by PID in
tearDownClass, whatever happened. Everything is bounded by subprocess timeouts.
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import BUILD, connect  # noqa: E402

TARN = os.path.join(os.path.abspath(BUILD), "tarn")
RAFTNET = os.path.join(os.path.abspath(BUILD), "raftnet")


def dead_urls(n):
    """Loopback URLs on which nothing listens (ports that were free a moment ago)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    urls = [f"tcp://127.0.0.1:{s.getsockname()[1]}" for s in socks]
    for s in socks:
        s.close()
    return urls


def read_pids(cluster_dir):
    """{node id: pid} from DIR/cluster.conf ({} if it is not there)."""
    pids = {}
    try:
        with open(os.path.join(cluster_dir, "cluster.conf")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4 and parts[0] == "node":
                    pids[int(parts[1])] = int(parts[2])
    except FileNotFoundError:
        pass
    return pids


def kill_raftnets(pids):
    """SIGKILL each pid that is still a raftnet process (a recycled pid is left alone)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"raftnet" not in f.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass


def tarn(*args, timeout=60, input=None, env=None):
    return subprocess.run([TARN, *args], capture_output=True, text=True, timeout=timeout, input=input,
                          env=env)


class WithoutDaemon(unittest.TestCase):
    def test_no_leader_reachable_message(self):
        urls = dead_urls(2)
        db = connect()
        try:
            db.execute("CREATE VIRTUAL TABLE kv USING tarn_kv(cluster='%s', timeout_ms=300)" % ",".join(urls))
            start = time.monotonic()
            with self.assertRaises(sqlite3.OperationalError) as cm:
                db.execute("SELECT value FROM kv WHERE key = 'a'").fetchall()
            elapsed = time.monotonic() - start
        finally:
            db.close()
        self.assertEqual(str(cm.exception),
                         "tarn: no leader reachable after 300 ms (tried %s, %s)" % (urls[0], urls[1]))
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 3.0)

    def test_tarn_status_unreachable_members(self):
        urls = dead_urls(2)
        db = connect()
        try:
            start = time.monotonic()
            rows = db.execute("SELECT id, url, role, term, commit_index, applied_index, lag, leader "
                              "FROM tarn_status(?, 300) ORDER BY url", (" , ".join(urls),)).fetchall()
            elapsed = time.monotonic() - start
        finally:
            db.close()
        self.assertEqual(rows, [(None, u, "unreachable", None, None, None, None, 0) for u in sorted(urls)])
        # Both members are asked at once: the whole query takes about one timeout, not two.
        self.assertLess(elapsed, 0.59)

    def test_tarn_status_needs_a_cluster(self):
        env_cluster = os.environ.pop("TARN_CLUSTER", None)
        db = connect()
        try:
            with self.assertRaises(sqlite3.OperationalError) as cm:
                db.execute("SELECT * FROM tarn_status").fetchall()
            self.assertIn("tarn_status: no cluster given", str(cm.exception))
            urls = dead_urls(1)
            db.execute("SELECT tarn_connect(?)", (urls[0],))
            rows = db.execute("SELECT url, role FROM tarn_status WHERE timeout_ms = 100").fetchall()
            self.assertEqual(rows, [(urls[0], "unreachable")])
            with self.assertRaises(sqlite3.OperationalError) as cm:
                db.execute("SELECT * FROM tarn_status(?, 0)", (urls[0],)).fetchall()
            self.assertIn("timeout_ms must be in 1..3600000", str(cm.exception))
        finally:
            db.close()
            if env_cluster is not None:
                os.environ["TARN_CLUSTER"] = env_cluster

    def test_cli_errors_are_one_line(self):
        r = tarn("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertTrue(r.stderr.startswith("tarn: unknown command 'frobnicate'"), r.stderr)
        missing = os.path.join(tempfile.gettempdir(), "tarn-no-such-dir-%d" % os.getpid())
        r = tarn("cluster", "stop", "--dir", missing)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("cluster.conf", r.stderr)
        r = tarn("bench", "--embedded", "--op", "frob")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--op: 'frob' is not put, get, cas, txn or mix", r.stderr)

    def test_cli_status_of_dead_members(self):
        urls = dead_urls(2)
        r = tarn("status", "--cluster", ",".join(urls), "--timeout-ms", "200", timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "tarn: no leader among the members that answered\n")
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3, r.stdout)
        for u in urls:
            self.assertTrue(any(u in line and "unreachable" in line for line in lines), r.stdout)

    def test_bench_embedded_persistent(self):
        d = tempfile.mkdtemp(prefix="tarn-cli-bench-")
        try:
            r = tarn("bench", "--embedded", "--data", d, "--op", "put", "--clients", "4", "--seconds", "0.3",
                     "--json", timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout)
            self.assertEqual(res["errors"], 0)
            self.assertGreater(res["ops"], 0)
            segs = [f for f in os.listdir(os.path.join(d, "log")) if f.endswith(".seg")]
            self.assertTrue(segs, os.listdir(d))
        finally:
            shutil.rmtree(d, ignore_errors=True)
        r = tarn("bench", "--dir", d, "--data", d)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--data DIR goes with --embedded", r.stderr)

    def test_bench_embedded_json(self):
        for op in ("put", "get", "txn"):
            r = tarn("bench", "--embedded", "--op", op, "--clients", "2", "--seconds", "0.3", "--keys", "500",
                     "--json", timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout)
            self.assertEqual(res["op"], op)
            self.assertEqual(res["target"], "embedded")
            self.assertEqual(res["errors"], 0)
            self.assertGreater(res["ops"], 0)
            self.assertLessEqual(res["p50_ms"], res["p99_ms"])
            self.assertLessEqual(res["p99_ms"], res["p999_ms"])


@unittest.skipUnless(os.access(RAFTNET, os.X_OK), "build/raftnet is not built")
class WithCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tarn-cli-test-")
        cls.pids = []
        r = tarn("cluster", "start", "--nodes", "3", "--dir", cls.dir, "--wait-ms", "20000", timeout=60)
        cls.pids = cls.read_pids()
        if r.returncode != 0:
            cls.tearDownClass()
            raise AssertionError("tarn cluster start failed: " + r.stderr)
        cls.urls = r.stdout.strip()

    @classmethod
    def read_pids(cls):
        return read_pids(cls.dir)

    @classmethod
    def tearDownClass(cls):
        try:
            tarn("cluster", "stop", "--dir", cls.dir, "--timeout-ms", "5000", timeout=30)
        finally:
            # Whatever happened above: every process this class started goes, by PID.
            kill_raftnets(set(cls.pids.values()) | set(cls.read_pids().values()))
            shutil.rmtree(cls.dir, ignore_errors=True)

    def test_raftnet_bad_max_inflight(self):
        for bad in ("0", "257", "x"):
            r = subprocess.run([RAFTNET, "--id", "1", "--max-inflight", bad], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 2)
            self.assertIn("bad value for --max-inflight: '%s'" % bad, r.stderr)

    def test_start_wrote_config_and_urls(self):
        urls = self.urls.split(",")
        self.assertEqual(len(urls), 3)
        self.assertTrue(all(u.startswith("tcp://127.0.0.1:") for u in urls))
        self.assertEqual(sorted(self.pids), [1, 2, 3])
        r = tarn("cluster", "start", "--nodes", "3", "--dir", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already running", r.stderr)

    def test_cli_status(self):
        r = tarn("status", "--dir", self.dir, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[:3], ["ID", "URL", "ROLE"])
        self.assertEqual(len(lines), 4, r.stdout)
        self.assertEqual(sum(1 for line in lines[1:] if line.split()[2] == "leader"), 1, r.stdout)
        self.assertEqual(sum(1 for line in lines[1:] if line.rstrip().endswith("*")), 1, r.stdout)

    def test_tarn_status_rows(self):
        db = connect()
        try:
            # One URL is enough: the others come from the members' own lists.
            db.execute("SELECT tarn_connect(?)", (self.urls.split(",")[1],))
            rows = db.execute("SELECT id, url, role, term, commit_index, applied_index, lag, leader "
                              "FROM tarn_status ORDER BY id").fetchall()
        finally:
            db.close()
        self.assertEqual([r[0] for r in rows], [1, 2, 3])
        self.assertEqual(sorted(r[1] for r in rows), sorted(self.urls.split(",")))
        self.assertEqual(sum(r[7] for r in rows), 1)
        leader = [r for r in rows if r[7] == 1][0]
        self.assertEqual(leader[2], "leader")
        self.assertEqual(leader[6], 0)
        for r in rows:
            self.assertIn(r[2], ("leader", "follower"))
            self.assertGreaterEqual(r[3], 1)
            self.assertLessEqual(r[5], r[4] if r[7] else leader[4] + 1000)
            self.assertIsNotNone(r[6])

    def test_sql_round_trip(self):
        key = "cli_rt_%d" % os.getpid()
        r = tarn("sql", "--dir", self.dir, "-batch", ":memory:", timeout=30,
                 input="CREATE VIRTUAL TABLE kv USING tarn_kv;\n"
                       f"REPLACE INTO kv(key, value) VALUES ('{key}', 'over raft');\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Another process, another connection: the value lives in the cluster, not in a process.
        r = tarn("sql", "--cluster", self.urls, "-batch", "-noheader", ":memory:", timeout=30,
                 input="CREATE VIRTUAL TABLE kv USING tarn_kv;\n"
                       f"SELECT value FROM kv WHERE key = '{key}';\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "over raft")

    def test_python_connection_through_cluster_option(self):
        db = connect()
        try:
            db.execute("CREATE VIRTUAL TABLE kv USING tarn_kv(cluster='%s', timeout_ms=5000)" % self.urls)
            db.execute("REPLACE INTO kv(key, value) VALUES ('py_cli', 'v1')")
            db.execute("UPDATE kv SET value = 'v2' WHERE key = 'py_cli' AND value = 'v1'")
            self.assertEqual(db.execute("SELECT value FROM kv WHERE key = 'py_cli'").fetchone(), ("v2",))
        finally:
            db.close()

    def leader_id(self):
        db = connect()
        try:
            row = db.execute("SELECT id FROM tarn_status(?) WHERE leader = 1", (self.urls,)).fetchone()
        finally:
            db.close()
        return row[0] if row else None

    def test_admin_snapshot_and_leader_transfer(self):
        r = tarn("snapshot", "--dir", self.dir, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("snapshot: ok"), r.stdout)
        old = self.leader_id()
        self.assertIsNotNone(old)
        target = 1 if old != 1 else 2
        r = tarn("leader", "transfer", str(target), "--dir", self.dir, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 10
        while self.leader_id() != target and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.leader_id(), target)
        r = tarn("member", "promote", "99", "--dir", self.dir, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertTrue(r.stderr.startswith("tarn: member promote 99: "), r.stderr)

    def test_bench_against_cluster(self):
        # put/get/cas clients are event-driven, txn clients are threads: every kind finishes without errors
        for op in ("put", "get", "cas", "txn"):
            r = tarn("bench", "--dir", self.dir, "--op", op, "--clients", "4", "--seconds", "0.5",
                     "--keys", "200", "--json", timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout)
            self.assertEqual(res["target"], "cluster")
            self.assertEqual(res["op"], op)
            self.assertEqual(res["errors"], 0, r.stderr)
            self.assertGreater(res["ops"], 0)

    def test_bench_through_one_follower(self):
        # given only a follower's URL, the clients are answered (forwarded, then at the leader it names)
        r = tarn("status", "--dir", self.dir, timeout=20)
        follower = next(line.split()[1] for line in r.stdout.splitlines()[1:] if line.split()[2] == "follower")
        r = tarn("bench", "--cluster", follower, "--op", "put", "--clients", "2", "--seconds", "0.5", "--json",
                 timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual(res["errors"], 0, r.stderr)
        self.assertGreater(res["ops"], 0)


@unittest.skipUnless(os.access(RAFTNET, os.X_OK), "build/raftnet is not built")
class WithToken(unittest.TestCase):
    """A one-node cluster with a cluster token: the CLI passes it from cluster.conf or TARN_TOKEN."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tarn-cli-token-")
        self.addCleanup(self.stop)
        r = tarn("cluster", "start", "--nodes", "1", "--dir", self.dir, "--token", "s3cret", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.url = r.stdout.strip()

    def stop(self):
        pids = read_pids(self.dir)
        try:
            tarn("cluster", "stop", "--dir", self.dir, "--timeout-ms", "5000", timeout=30)
        finally:
            kill_raftnets(pids.values())
            shutil.rmtree(self.dir, ignore_errors=True)

    def test_token_required_and_passed(self):
        env = dict(os.environ)
        env.pop("TARN_TOKEN", None)
        r = tarn("status", "--cluster", self.url, "--timeout-ms", "500", env=env, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHORIZED", r.stderr)
        r = tarn("status", "--dir", self.dir, env=env, timeout=20)  # token from cluster.conf
        self.assertEqual(r.returncode, 0, r.stderr)
        env["TARN_TOKEN"] = "s3cret"
        r = tarn("status", "--cluster", self.url, env=env, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
