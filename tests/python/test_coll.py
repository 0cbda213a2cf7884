"""tarn collection tables through Python's sqlite3 module: concurrent writers (TryAdd, UpdateIf, SQLITE_BUSY
naming the row), one-request IN lists, compression, big transactions and the polymorphic example."""
import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import BUILD, connect  # noqa: E402

SOURCE = os.environ.get("TARN_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")

DECL = ("id INTEGER PRIMARY KEY, event_type TEXT INDEXED, event_date TEXT ORDERED, version INTEGER, "
        "body JSON, compress=lz4")


class CollTest(unittest.TestCase):
    def setUp(self):
        self.engine = f"pycoll_{self._testMethodName}"
        self.db = self.open()

    def open(self):
        db = connect()
        db.execute(f"CREATE VIRTUAL TABLE events USING tarn({DECL}, engine='{self.engine}')")
        return db

    def tearDown(self):
        self.db.close()

    def requests(self, db=None):
        return (db or self.db).execute("SELECT tarn_request_count()").fetchone()[0]

    def fill(self, n):
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO events VALUES (?, ?, ?, 1, ?)",
                            [(i, f"T{i % 3}", f"2026-01-{1 + i % 28:02d}", f'{{"i": {i}}}') for i in range(n)])
        self.db.execute("COMMIT")

    def test_in_list_is_one_request(self):
        self.fill(300)
        keys = list(range(0, 300, 3)) + [1000, "7"]
        marks = ",".join("?" * len(keys))
        sql = f"SELECT id FROM events WHERE id IN ({marks})"
        self.db.execute(sql, keys).fetchall()  # plans (may refresh statistics)
        before = self.requests()
        rows = self.db.execute(sql, keys).fetchall()
        self.assertEqual(self.requests() - before, 1)
        self.assertEqual(sorted(r[0] for r in rows), sorted(set(range(0, 300, 3)) | {7}))
        # IN on a hash index, too
        before = self.requests()
        n = self.db.execute("SELECT count(*) FROM events WHERE event_type IN ('T0', 'T2', 'none')").fetchone()[0]
        self.assertLessEqual(self.requests() - before, 2)  # the query, maybe one statistics refresh
        self.assertEqual(n, 200)

    def test_a_big_transaction_is_one_request(self):
        before = self.requests()
        self.fill(2500)
        self.assertEqual(self.requests() - before, 1)
        self.assertEqual(self.db.execute("SELECT count(*) FROM events").fetchone()[0], 2500)

    def test_compressed_payloads_round_trip(self):
        big = '{"text": "' + "abc" * 500 + '"}'
        small = '{"t": 1}'
        self.db.execute("INSERT INTO events VALUES (1, 'x', '2026', 1, ?), (2, 'y', '2026', 1, ?)", (big, small))
        rows = self.db.execute("SELECT id, body FROM events ORDER BY id").fetchall()
        self.assertEqual(rows, [(1, big), (2, small)])
        # ...and compression did happen. A write's request bytes are its log entry, so a persistent store's
        # log shows what a row's payload became: with compress=lz4 the big body's text is not there and
        # the log is a fraction of the compress=none one; the small body (under the threshold) stays raw.
        logs = {mode: self.log_after_writes(mode, big, small) for mode in ("none", "lz4")}
        self.assertIn(("abc" * 100).encode(), logs["none"])
        self.assertNotIn(("abc" * 100).encode(), logs["lz4"])
        self.assertIn(small.encode(), logs["lz4"])
        self.assertGreater(len(logs["none"]), 20 * len(big))
        self.assertLess(len(logs["lz4"]), len(logs["none"]) // 4)

    def log_after_writes(self, mode, big, small):
        """The bytes of every log segment of a new persistent store after 20 big rows and one small row."""
        data = tempfile.mkdtemp(prefix=f"tarn-compress-{mode}-")
        self.addCleanup(shutil.rmtree, data, ignore_errors=True)
        db = connect()
        try:
            db.execute(f"CREATE VIRTUAL TABLE c USING tarn({DECL.replace('compress=lz4', 'compress=' + mode)}, "
                       f"data='{data}')")
            db.execute("BEGIN")
            db.executemany("INSERT INTO c VALUES (?, 'x', '2026', 1, ?)", [(i, big) for i in range(20)])
            db.execute("INSERT INTO c VALUES (100, 'y', '2026', 1, ?)", (small,))
            db.execute("COMMIT")
            rows = db.execute("SELECT id, body FROM c ORDER BY id").fetchall()
            self.assertEqual(rows, [(i, big) for i in range(20)] + [(100, small)])
        finally:
            db.close()
        segs = sorted(glob.glob(os.path.join(data, "log", "log-*.seg")))
        self.assertTrue(segs, data)
        out = b""
        for seg in segs:
            with open(seg, "rb") as f:
                out += f.read()
        return out

    def test_stale_update_is_busy_and_names_the_row(self):
        other = self.open()
        try:
            self.db.execute("INSERT INTO events VALUES (7, 'A', '2026-01-01', 3, '{}')")
            self.db.execute("BEGIN")
            self.db.execute("UPDATE events SET version = 4 WHERE id = 7 AND version = 3")
            other.execute("UPDATE events SET version = 10 WHERE id = 7")
            with self.assertRaises(sqlite3.OperationalError) as cm:
                self.db.execute("COMMIT")
            msg = str(cm.exception)
            self.assertIn("REVISION_MISMATCH", msg)
            self.assertIn("row id=7 of 'events' changed since it was read", msg)
            # SQLite keeps the transaction open after a BUSY COMMIT; retrying cannot commit a lost buffer.
            if self.db.in_transaction:
                with self.assertRaises(sqlite3.OperationalError) as cm:
                    self.db.execute("COMMIT")
                self.assertIn("must be rolled back", str(cm.exception))
                self.db.execute("ROLLBACK")
            self.assertEqual(self.db.execute("SELECT version FROM events WHERE id = 7").fetchone()[0], 10)
            # A deleted row is a conflict too.
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM events WHERE id = 7")
            other.execute("DELETE FROM events WHERE id = 7")
            other.execute("INSERT INTO events VALUES (7, 'B', '2026-01-01', 1, '{}')")
            with self.assertRaises(sqlite3.OperationalError) as cm:
                self.db.execute("COMMIT")
            self.assertIn("row id=7 of 'events'", str(cm.exception))
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.assertEqual(self.db.execute("SELECT event_type FROM events WHERE id = 7").fetchone()[0], "B")
        finally:
            other.close()

    def test_try_add_conflict_is_busy_at_commit(self):
        other = self.open()
        try:
            self.db.execute("BEGIN")
            cur = self.db.execute("INSERT OR IGNORE INTO events VALUES (100, 'mine', '2026', 1, '{}')")
            self.assertEqual(cur.rowcount, 1)
            other.execute("INSERT INTO events VALUES (100, 'theirs', '2026', 1, '{}')")
            with self.assertRaises(sqlite3.OperationalError) as cm:
                self.db.execute("COMMIT")
            self.assertIn("row id=100 of 'events' was added since it was read", str(cm.exception))
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.assertEqual(self.db.execute("SELECT event_type FROM events WHERE id = 100").fetchone()[0],
                             "theirs")
        finally:
            other.close()

    def test_transaction_is_all_or_nothing(self):
        self.db.execute("INSERT INTO events VALUES (1, 'a', 'd', 1, '{}'), (2, 'b', 'd', 1, '{}')")
        self.db.execute("BEGIN")
        self.db.execute("UPDATE events SET version = 2 WHERE id = 1")
        self.db.execute("INSERT INTO events VALUES (3, 'c', 'd', 1, '{}')")
        self.db.execute("INSERT INTO events VALUES (2, 'dup', 'd', 1, '{}')")  # exists: reported by COMMIT
        with self.assertRaises(sqlite3.IntegrityError) as cm:
            self.db.execute("COMMIT")
        self.assertIn("ROW_EXISTS: row id=2 of 'events' already exists", str(cm.exception))
        rows = self.db.execute("SELECT id, version FROM events ORDER BY id").fetchall()
        self.assertEqual(rows, [(1, 1), (2, 1)])

    def test_concurrent_increments_lose_nothing(self):
        self.db.execute("INSERT INTO events VALUES (1, 'counter', 'd', 0, '{}')")
        per_thread, threads, done, errors = 40, 4, [], []

        def work():
            db = self.open()
            ok = busy = 0
            try:
                while ok < per_thread:
                    try:
                        db.execute("UPDATE events SET version = version + 1 WHERE id = 1")
                        ok += 1
                    except sqlite3.OperationalError as e:
                        if "row id=1 of 'events'" not in str(e):
                            errors.append(str(e))
                            return
                        busy += 1
                done.append((ok, busy))
            finally:
                db.close()

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(done), threads)
        total = self.db.execute("SELECT version FROM events WHERE id = 1").fetchone()[0]
        self.assertEqual(total, per_thread * threads)

    def test_concurrent_try_add_has_one_winner(self):
        winners, errors = [], []

        def work(me):
            db = self.open()
            try:
                for key in range(30):
                    try:
                        cur = db.execute("INSERT OR IGNORE INTO events VALUES (?, ?, 'd', 1, '{}')", (key, f"w{me}"))
                        if cur.rowcount == 1:
                            winners.append((key, f"w{me}"))
                    except sqlite3.OperationalError as e:  # appeared between the check and the commit
                        if "was added since it was read" not in str(e):
                            errors.append(str(e))
            finally:
                db.close()

        ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        stored = dict(self.db.execute("SELECT id, event_type FROM events").fetchall())
        self.assertEqual(len(stored), 30)
        self.assertEqual(sorted(k for k, _ in winners), list(range(30)))  # exactly one winner per key
        for key, who in winners:
            self.assertEqual(stored[key], who)

    def test_too_large_transaction_fails_cleanly(self):
        blob = os.urandom(2 << 20).hex()  # 4 MiB that LZ4 cannot shrink
        self.db.execute("BEGIN")
        with self.assertRaises(sqlite3.Error) as cm:
            for i in range(20):
                self.db.execute("INSERT INTO events VALUES (?, 't', 'd', 1, ?)", (i, blob))
        self.assertIn("TOO_LARGE", str(cm.exception))
        self.db.execute("ROLLBACK")
        self.assertEqual(self.db.execute("SELECT count(*) FROM events").fetchone()[0], 0)

    def test_polymorphic_example(self):
        example = os.path.join(SOURCE, "sql", "examples", "polymorphic.sql")
        with open(example, encoding="utf-8") as f:
            script = f.read()
        out = subprocess.run(["sqlite3", ":memory:"], input=script, capture_output=True, text=True,
                             cwd=os.path.abspath(BUILD), timeout=120)
        self.assertEqual(out.stderr, "")
        lines = out.stdout.splitlines()
        expect = [
            "-- increase/decrease events of 2026-11-20 (both indexes used on the server)",
            "1|250000|EUR", "2|-50000|USD",
            "-- every event of deal 100, whatever its type",
            "1|IncreaseDecrease|delta 250000", "3|FixingEvent|EURIBOR3M @ 0.0312",
            "-- the latest events by value date (range + ORDER BY + LIMIT pushed down)",
            "4|2026-11-25", "2|2026-11-23",
            "-- events without a value date (NULL is indexed)",
            "3|FixingEvent",
            "-- total delta per currency, from the subtype fields",
            "EUR|260000", "USD|-50000",
            "-- UpdateIf: amend an event only if nobody changed it since version 1",
            "1|2|300000", "0",
            "-- TryAdd: add an event only if its id is free",
            "0|FixingEvent", "1",
        ]
        self.assertEqual(lines, expect)


if __name__ == "__main__":
    unittest.main()
