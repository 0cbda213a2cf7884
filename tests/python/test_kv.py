"""tarn_kv through Python's sqlite3 module (Debian's /usr/bin/python3), on the embedded engine."""
import sqlite3
import sys
import threading
import time
import unittest
import os

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import connect  # noqa: E402


class KvTest(unittest.TestCase):
    def setUp(self):
        # Each test uses its own engine so tests do not see each other's keys.
        self.engine = f"py_{self._testMethodName}"
        self.db = self.open()

    def open(self):
        db = connect()
        db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(engine='{self.engine}')")
        return db

    def tearDown(self):
        self.db.close()

    def value(self, key, db=None):
        row = (db or self.db).execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def test_put_get_list_remove(self):
        db = self.db
        db.execute("INSERT INTO kv(key, is_dir) VALUES ('users', 1)")
        db.execute("INSERT INTO kv(key, value) VALUES ('users.alice', 'admin')")
        with self.assertRaises(sqlite3.IntegrityError) as cm:
            db.execute("INSERT INTO kv(key, value) VALUES ('users.alice', 'x')")
        self.assertIn("VALUE_EXISTS", str(cm.exception))
        self.assertIn("users.alice", str(cm.exception))
        db.execute("REPLACE INTO kv(key, value) VALUES ('users.alice', 'root')")
        self.assertEqual(self.value("users.alice"), "root")
        db.execute("INSERT INTO kv(key, value) VALUES ('users.bob', ?)", (b"\x00\x01",))
        self.assertEqual(self.value("users.bob"), b"\x00\x01")
        rows = db.execute("SELECT key, is_dir FROM kv WHERE parent = 'users' ORDER BY key").fetchall()
        self.assertEqual(rows, [("users.alice", 0), ("users.bob", 0)])
        with self.assertRaises(sqlite3.IntegrityError) as cm:
            db.execute("DELETE FROM kv WHERE key = 'users'")
        self.assertIn("HAS_CHILDREN", str(cm.exception))
        db.execute("DELETE FROM kv WHERE parent = 'users'")
        db.execute("DELETE FROM kv WHERE key = 'users'")
        self.assertEqual(db.execute("SELECT count(*) FROM kv").fetchone()[0], 0)

    def test_in_list_is_one_request(self):
        db = self.db
        db.executemany("INSERT INTO kv(key, value) VALUES (?, ?)", [(f"k{i}", f"v{i}") for i in range(50)])
        before = db.execute("SELECT tarn_request_count()").fetchone()[0]
        keys = [f"k{i}" for i in range(0, 50, 2)] + ["absent"]
        marks = ",".join("?" * len(keys))
        rows = db.execute(f"SELECT key, value FROM kv WHERE key IN ({marks})", keys).fetchall()
        after = db.execute("SELECT tarn_request_count()").fetchone()[0]
        self.assertEqual(sorted(rows), sorted((f"k{i}", f"v{i}") for i in range(0, 50, 2)))
        self.assertEqual(after - before, 1)

    def test_connections_share_the_engine(self):
        other = self.open()
        try:
            self.db.execute("INSERT INTO kv(key, value) VALUES ('shared', 'yes')")
            self.assertEqual(self.value("shared", other), "yes")
        finally:
            other.close()

    def test_temp_node_owner_and_expiry(self):
        other = self.open()
        try:
            self.db.execute("INSERT INTO kv(key, value, ttl_ms) VALUES ('lock', 'me', 60000)")
            with self.assertRaises(sqlite3.DatabaseError) as cm:
                other.execute("DELETE FROM kv WHERE key = 'lock'")
            self.assertIn("NOT_OWNER", str(cm.exception))
            with self.assertRaises(sqlite3.DatabaseError) as cm:
                other.execute("UPDATE kv SET ttl_ms = 5 WHERE key = 'lock'")
            self.assertIn("NOT_OWNER", str(cm.exception))
            self.db.execute("DELETE FROM kv WHERE key = 'lock'")
            self.assertIsNone(self.value("lock"))

            ttl = 300
            start = time.monotonic()
            self.db.execute("INSERT INTO kv(key, value, ttl_ms) VALUES ('short', 'x', ?)", (ttl,))
            gone_at = None
            while time.monotonic() - start < 5:
                if self.value("short", other) is None:
                    gone_at = (time.monotonic() - start) * 1000
                    break
                time.sleep(0.005)
            self.assertIsNotNone(gone_at, "temp node never expired")
            self.assertGreaterEqual(gone_at, ttl - 5)
            # "gone within about 100 ms of its TTL"; a little slack for the sanitizer build
            self.assertLess(gone_at, ttl + 150, f"expired after {gone_at:.0f} ms")
        finally:
            other.close()

    def test_cas_counter_under_concurrency(self):
        """Each thread increments a counter with compare-and-set; no increment may be lost."""
        self.db.execute("INSERT INTO kv(key, value) VALUES ('counter', '0')")
        successes = []
        errors = []

        def worker():
            db = self.open()
            mine = 0
            try:
                deadline = time.monotonic() + 1.5
                for _ in range(200):
                    if time.monotonic() > deadline:
                        break
                    v = self.value("counter", db)
                    try:
                        cur = db.execute("UPDATE kv SET value = ? WHERE key = 'counter' AND value = ?",
                                         (str(int(v) + 1), v))
                        mine += cur.rowcount
                    except sqlite3.OperationalError as e:  # SQLITE_BUSY: changed since read
                        if "REVISION_MISMATCH" not in str(e):
                            errors.append(str(e))
            finally:
                db.close()
                successes.append(mine)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(successes), 4)
        self.assertGreater(sum(successes), 0)
        self.assertEqual(int(self.value("counter")), sum(successes))

    def test_update_without_value_condition_is_not_a_lost_update(self):
        """UPDATE ... SET value = value || 'x' reads then writes; the write carries the revision read."""
        self.db.execute("INSERT INTO kv(key, value) VALUES ('s', '-')")
        done = []
        errors = []

        def worker():
            db = self.open()
            ok = 0
            try:
                for _ in range(100):
                    try:
                        ok += db.execute("UPDATE kv SET value = value || 'x' WHERE key = 's'").rowcount
                    except sqlite3.OperationalError as e:
                        if "REVISION_MISMATCH" not in str(e):
                            errors.append(str(e))
            finally:
                db.close()
                done.append(ok)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(done), 4)
        self.assertEqual(len(self.value("s")) - 1, sum(done))

    def test_errors_name_code_and_key(self):
        cases = [
            ("INSERT INTO kv(key, value) VALUES ('a..b', 'x')", "INVALID_KEY", "a..b"),
            ("INSERT INTO kv(key, value) VALUES ('no.parent', 'x')", "PARENT_DIR_NOT_EXISTS", "no.parent"),
            ("INSERT INTO kv(key, value) VALUES ('e', '')", "INVALID_VALUE", "e"),
            ("INSERT INTO kv(key, value) VALUES (?, 'x')".replace("?", "'" + "k" * 8193 + "'"),
             "KEY_TOO_LONG", "kkkk"),
        ]
        for sql, code, key in cases:
            with self.assertRaises(sqlite3.DatabaseError, msg=sql) as cm:
                self.db.execute(sql)
            self.assertIn(code, str(cm.exception))
            self.assertIn(key, str(cm.exception))
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            self.db.execute("INSERT INTO kv(key, value) VALUES ('big', ?)", (b"v" * (1024 * 1024 + 1),))
        self.assertIn("VALUE_TOO_LONG", str(cm.exception))
        self.db.execute("INSERT INTO kv(key, value) VALUES ('big', ?)", (b"v" * (1024 * 1024),))
        self.assertEqual(len(self.value("big")), 1024 * 1024)

    def test_bad_arguments(self):
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            self.db.execute("CREATE VIRTUAL TABLE bad USING tarn_kv(nonsense='1')")
        self.assertIn("nonsense", str(cm.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
