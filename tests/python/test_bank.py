"""The bank test (issue 6): N accounts with a known total; several clients run random transfers in
transactions for a bounded time, retrying on SQLITE_BUSY; at random points (in a read statement) and at
the end the total is unchanged and no balance is negative. Each transfer also bumps its client's counter
in a tarn_kv table in the same transaction, so the kv counters must add up to the transfers committed
(one atomic commit across both kinds of tables).

Embedded engine: the engine lives in one process, so clients are THREADS, each with its own connection.
Cluster: processes against a raftnet cluster started with `tarn cluster start`; skipped (with the reason)
until build/raftnet and the CLI exist.

`python3 test_bank.py --bench` prints the transfer benchmark (1 and 16 clients: transactions/s, p50/p99
latency, conflict rate) and the bulk-insert comparison with a native table (figures for
docs/benchmarks.md).
"""
import os
import random
import shutil
import sqlite3
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import BUILD, connect  # noqa: E402

ACCOUNTS = 16
START = 1000
TOTAL = ACCOUNTS * START


def is_busy(exc):
    # SQLITE_BUSY surfaces as OperationalError; Tarn's message names the conflict.
    return isinstance(exc, sqlite3.OperationalError)


def setup_tables(db, engine, cluster=None):
    where = f"cluster='{cluster}'" if cluster else f"engine='{engine}'"
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS acc USING tarn(id INTEGER PRIMARY KEY, bal INTEGER, {where})")
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS kv USING tarn_kv({where})")


def seed(db):
    db.execute("BEGIN")
    for i in range(ACCOUNTS):
        db.execute("INSERT INTO acc VALUES (?, ?)", (i, START))
    db.execute("INSERT INTO kv(key, is_dir) VALUES ('ledger', 1)")
    db.execute("COMMIT")


def transfer(db, me, rng, stats):
    """One transfer, retried until it commits (or is skipped for lack of funds). Returns its latency."""
    t0 = time.perf_counter()
    while True:
        a, b = rng.sample(range(ACCOUNTS), 2)
        amount = rng.randint(1, 50)
        try:
            db.execute("BEGIN")
            bal_a = db.execute("SELECT bal FROM acc WHERE id = ?", (a,)).fetchone()[0]
            bal_b = db.execute("SELECT bal FROM acc WHERE id = ?", (b,)).fetchone()[0]
            if bal_a < amount:
                db.execute("ROLLBACK")
                stats["skipped"] += 1
                return time.perf_counter() - t0
            # Values computed from the reads above: only read-set validation keeps this correct.
            db.execute("UPDATE acc SET bal = ? WHERE id = ?", (bal_a - amount, a))
            db.execute("UPDATE acc SET bal = ? WHERE id = ?", (bal_b + amount, b))
            db.execute("UPDATE kv SET value = value + 1 WHERE key = ?", (f"ledger.c{me}",))
            db.execute("COMMIT")
            stats["committed"] += 1
            return time.perf_counter() - t0
        except sqlite3.Error as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if not is_busy(e):
                raise
            stats["conflicts"] += 1


def check_totals(db):
    total, low, n = db.execute("SELECT sum(bal), min(bal), count(*) FROM acc").fetchone()
    return total, low, n


def run_bank(open_db, clients, seconds, seed_value=1):
    """Runs `clients` transfer threads for `seconds`; returns (stats list, latencies, checks, errors)."""
    stop = time.monotonic() + seconds
    stats = [{"committed": 0, "conflicts": 0, "skipped": 0} for _ in range(clients)]
    lat = [[] for _ in range(clients)]
    errors, checks = [], []

    def worker(me):
        try:
            db = open_db()
            db.execute("INSERT OR IGNORE INTO kv(key, value) VALUES (?, 0)", (f"ledger.c{me}",))
            rng = random.Random(seed_value * 1000 + me)
            while time.monotonic() < stop:
                lat[me].append(transfer(db, me, rng, stats[me]))
            db.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))

    def checker():
        try:
            db = open_db()
            rng = random.Random(seed_value)
            while time.monotonic() < stop:
                checks.append(check_totals(db))
                # a read transaction too
                db.execute("BEGIN")
                checks.append(check_totals(db))
                db.execute("COMMIT")
                time.sleep(rng.uniform(0.005, 0.05))
            db.close()
        except Exception as e:  # noqa: BLE001
            errors.append("checker: " + repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=checker))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats, lat, checks, errors


class BankEmbeddedTest(unittest.TestCase):
    def test_bank_threads(self):
        engine = "bank_threads"
        keeper = connect()  # keeps the engine alive for the whole run
        setup_tables(keeper, engine)
        seed(keeper)

        def open_db():
            db = connect()
            setup_tables(db, engine)
            return db

        stats, _, checks, errors = run_bank(open_db, clients=4, seconds=3.0)
        self.assertEqual(errors, [])
        committed = sum(s["committed"] for s in stats)
        conflicts = sum(s["conflicts"] for s in stats)
        self.assertGreater(committed, 20)
        self.assertGreater(len(checks), 5)
        for total, low, n in checks:
            self.assertEqual((total, n), (TOTAL, ACCOUNTS))
            self.assertGreaterEqual(low, 0)
        total, low, n = check_totals(keeper)
        self.assertEqual((total, n), (TOTAL, ACCOUNTS))
        self.assertGreaterEqual(low, 0)
        # every committed transfer bumped exactly one kv counter, in the same atomic commit
        counters = keeper.execute("SELECT sum(CAST(value AS INTEGER)) FROM kv WHERE parent = 'ledger'").fetchone()[0]
        self.assertEqual(counters, committed)
        print(f"\nbank (embedded, 4 threads, 3 s): {committed} transfers committed, {conflicts} conflicts "
              f"retried", file=sys.stderr)
        keeper.close()


CLUSTER_REASON = None
RAFTNET = os.path.join(os.path.abspath(BUILD), "raftnet")
TARN_CLI = os.path.join(os.path.abspath(BUILD), "tarn")
if not os.path.exists(RAFTNET):
    CLUSTER_REASON = f"no raftnet daemon at {RAFTNET} (the cluster variant runs once it exists)"
elif not os.path.exists(TARN_CLI):
    CLUSTER_REASON = f"no tarn CLI at {TARN_CLI} (needed for `tarn cluster start`)"


def _proc_worker(urls, me, seconds, out_path):
    """Entry of a client process of the cluster variant."""
    db = connect()
    setup_tables(db, None, urls)
    db.execute("INSERT OR IGNORE INTO kv(key, value) VALUES (?, 0)", (f"ledger.c{me}",))
    rng = random.Random(me)
    stats = {"committed": 0, "conflicts": 0, "skipped": 0}
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        transfer(db, me, rng, stats)
    with open(out_path, "w") as f:
        f.write(str(stats["committed"]))


@unittest.skipIf(CLUSTER_REASON is not None, CLUSTER_REASON or "")
class BankClusterTest(unittest.TestCase):
    """Several client PROCESSES against a 3-node raftnet cluster (`tarn cluster start`); the leader is
    SIGKILLed mid-run, and the total must hold throughout and at the end."""

    def kill_leader(self, db, urls, work):
        """SIGKILLs the current leader (PID from the cluster's cluster.conf). Returns its id, or None when
        no leader is known yet (the caller tries again)."""
        try:
            row = db.execute("SELECT id FROM tarn_status(?) WHERE leader = 1", (urls,)).fetchone()
        except sqlite3.OperationalError:
            return None
        if not row:
            return None
        with open(os.path.join(work, "cluster.conf")) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "node" and int(parts[1]) == row[0]:
                    os.kill(int(parts[2]), signal.SIGKILL)
                    return row[0]
        return None

    def test_bank_processes(self):
        work = tempfile.mkdtemp(prefix="tarn-bank-")
        try:
            started = subprocess.run([TARN_CLI, "cluster", "start", "--nodes", "3", "--dir", work],
                                     capture_output=True, text=True, timeout=60)
            self.assertEqual(started.returncode, 0, started.stderr)
            urls = started.stdout.strip().splitlines()[-1]
            keeper = connect()
            setup_tables(keeper, None, urls)
            seed(keeper)
            procs, outs = [], []
            for me in range(4):
                out = os.path.join(work, f"client{me}.out")
                outs.append(out)
                procs.append(subprocess.Popen([sys.executable, __file__, "--client", urls, str(me), "5", out]))
            start = time.monotonic()
            deadline = start + 5
            killed = None
            while time.monotonic() < deadline:
                if killed is None and time.monotonic() - start > 1.5:
                    killed = self.kill_leader(keeper, urls, work)
                try:
                    total, low, n = check_totals(keeper)
                except sqlite3.OperationalError as e:  # during the election: retry, never a wrong total
                    self.assertTrue(is_busy(e) or "no leader" in str(e), str(e))
                    continue
                self.assertEqual((total, n), (TOTAL, ACCOUNTS))
                self.assertGreaterEqual(low, 0)
                time.sleep(0.2)
            self.assertIsNotNone(killed, "the leader was never SIGKILLed")
            for p in procs:
                self.assertEqual(p.wait(timeout=60), 0)
            committed = 0
            for o in outs:
                with open(o) as f:
                    committed += int(f.read())
            total, low, n = check_totals(keeper)
            self.assertEqual((total, n), (TOTAL, ACCOUNTS))
            counters = keeper.execute("SELECT sum(CAST(value AS INTEGER)) FROM kv WHERE parent = 'ledger'").fetchone()[0]
            self.assertEqual(counters, committed)
            keeper.close()
        finally:
            subprocess.run([TARN_CLI, "cluster", "stop", "--dir", work], capture_output=True, timeout=60)
            shutil.rmtree(work, ignore_errors=True)


def bench(cluster=None, client_counts=(1, 16)):
    """Transfer throughput. cluster: member URLs of a FRESH cluster (one client count per cluster, since
    the accounts are created once), else the embedded engine."""
    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")

    for clients in client_counts:
        engine = f"bank_bench_{clients}"
        keeper = connect()
        setup_tables(keeper, engine, cluster)
        seed(keeper)

        def open_db():
            db = connect()
            setup_tables(db, engine, cluster)
            return db

        secs = 5.0
        stats, lat, _, errors = run_bank(open_db, clients, secs)
        assert not errors, errors
        committed = sum(s["committed"] for s in stats)
        conflicts = sum(s["conflicts"] for s in stats)
        all_lat = [x for per in lat for x in per]
        where = "cluster" if cluster else "embedded"
        print(f"transfer ({where}), {clients:2d} client(s): {committed / secs:8.0f} txn/s  p50 {pct(all_lat, .5) * 1e3:.3f} ms"
              f"  p99 {pct(all_lat, .99) * 1e3:.3f} ms  conflicts {conflicts} "
              f"({100.0 * conflicts / max(1, conflicts + committed):.1f}% of attempts)")
        assert check_totals(keeper)[0] == TOTAL
        keeper.close()
    if cluster:
        return

    db = connect()
    db.execute("CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, name TEXT, v INTEGER, engine='bulk')")
    db.execute("CREATE TABLE n(id INTEGER PRIMARY KEY, name TEXT, v INTEGER)")
    for table in ("n", "t"):
        t0 = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", ((i, f"name{i}", i * 7) for i in range(100000)))
        db.execute("COMMIT")
        dt = time.perf_counter() - t0
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 100000
        print(f"bulk insert 100k rows in one transaction, {'native' if table == 'n' else 'tarn  '}: "
              f"{dt:.3f} s ({100000 / dt:.0f} rows/s)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--bench-cluster":  # URLS CLIENTS (a fresh cluster)
        bench(sys.argv[2], (int(sys.argv[3]),))
    elif len(sys.argv) > 1 and sys.argv[1] == "--bench":
        bench()
    elif len(sys.argv) > 1 and sys.argv[1] == "--client":
        _proc_worker(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    else:
        unittest.main()
