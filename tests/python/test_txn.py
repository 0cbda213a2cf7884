"""Transactions (issue 6, docs/transactions.md) through Python's sqlite3 on the embedded engine: buffered
writes of tarn and tarn_kv tables committed as one atomic request, read-your-writes, read-set and phantom
validation, savepoints, statement rollback, failures that leave the store unchanged, limits."""
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import connect  # noqa: E402


class TxnTest(unittest.TestCase):
    def setUp(self):
        self.engine = f"txn_{self._testMethodName}"
        self.a = self.open()
        self.b = self.open()

    def open(self):
        db = connect()
        db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(engine='{self.engine}')")
        db.execute("CREATE VIRTUAL TABLE acc USING tarn(id INTEGER PRIMARY KEY, owner TEXT INDEXED, "
                   f"bal INTEGER, tag TEXT ORDERED, engine='{self.engine}')")
        return db

    def tearDown(self):
        self.a.close()
        self.b.close()

    def all(self, sql, db=None, args=()):
        return (db or self.a).execute(sql, args).fetchall()

    def seed(self):
        a = self.a
        a.execute("INSERT INTO kv(key, is_dir) VALUES ('users', 1)")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.ann', 'a'), ('users.bob', 'b')")
        a.execute("INSERT INTO acc VALUES (1, 'ann', 100, 'k1'), (2, 'bob', 50, 'k2'), (3, 'cat', 10, 'k3')")

    def assert_busy(self, db, sql, *needles):
        with self.assertRaises(sqlite3.OperationalError) as cm:
            db.execute(sql)
        for n in needles:
            self.assertIn(n, str(cm.exception))
        db.execute("ROLLBACK")
        return str(cm.exception)

    # ---- read-your-writes ----------------------------------------------------------------------------

    def test_kv_read_your_writes(self):
        self.seed()
        a = self.a
        a.execute("BEGIN")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.cy', 'c')")
        a.execute("UPDATE kv SET value = 'B' WHERE key = 'users.bob'")
        a.execute("DELETE FROM kv WHERE key = 'users.ann'")
        a.execute("INSERT INTO kv(key, is_dir) VALUES ('users.dir', 1)")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.dir.x', 'x')")
        self.assertEqual(self.all("SELECT key, value FROM kv WHERE parent = 'users' ORDER BY key"),
                         [("users.bob", "B"), ("users.cy", "c"), ("users.dir", None)])
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.ann'"), [])
        self.assertEqual(self.all("SELECT key, value FROM kv WHERE key IN ('users.ann', 'users.bob', 'users.cy') "
                                  "ORDER BY key"), [("users.bob", "B"), ("users.cy", "c")])
        self.assertEqual([r[0] for r in self.all("SELECT key FROM kv")],
                         ["users", "users.bob", "users.cy", "users.dir", "users.dir.x"])
        # the transaction's own rows have no revision yet
        self.assertEqual(self.all("SELECT update_rev IS NULL FROM kv WHERE key = 'users.cy'"), [(1,)])
        # an update of a row written in this transaction builds on the written value
        a.execute("UPDATE kv SET value = value || '2' WHERE key = 'users.cy'")
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.cy'"), [("c2",)])
        # the other connection sees none of it
        self.assertEqual(self.all("SELECT key, value FROM kv WHERE parent = 'users' ORDER BY key", self.b),
                         [("users.ann", "a"), ("users.bob", "b")])
        a.execute("COMMIT")
        self.assertEqual(self.all("SELECT key, value FROM kv WHERE parent = 'users' ORDER BY key", self.b),
                         [("users.bob", "B"), ("users.cy", "c2"), ("users.dir", None)])

    def test_coll_read_your_writes_matches_native(self):
        a = self.a
        a.execute("CREATE TEMP TABLE nat(id INTEGER PRIMARY KEY, owner TEXT, bal INTEGER, tag TEXT)")
        for t in ("acc", "nat"):
            a.execute(f"INSERT INTO {t} VALUES (1, 'ann', 100, 'k1'), (2, 'bob', 50, 'k2'), (3, 'cat', 10, 'k3'),"
                      " (4, 'ann', 7, 'k4'), (5, 'dan', 1, NULL)")
        a.execute("BEGIN")
        for t in ("acc", "nat"):
            a.execute(f"INSERT INTO {t} VALUES (6, 'ann', 60, 'k0'), (7, 'eve', 70, 'k9')")
            a.execute(f"UPDATE {t} SET bal = bal * 2, tag = 'k25' WHERE id = 2")
            a.execute(f"UPDATE {t} SET id = 8 WHERE id = 3")
            a.execute(f"DELETE FROM {t} WHERE id = 4")
            a.execute(f"UPDATE {t} SET bal = bal + 1 WHERE owner = 'ann'")
        queries = [
            "SELECT * FROM {t} WHERE id = 6",
            "SELECT * FROM {t} WHERE id = 3",
            "SELECT * FROM {t} WHERE id IN (1, 3, 4, 8) ORDER BY id",
            "SELECT id, bal FROM {t} WHERE owner = 'ann' ORDER BY id",
            "SELECT id FROM {t} WHERE owner IN ('bob', 'eve') ORDER BY id",
            "SELECT id, tag FROM {t} WHERE tag >= 'k2' ORDER BY tag",
            "SELECT id, tag FROM {t} WHERE tag BETWEEN 'k0' AND 'k3' ORDER BY tag DESC LIMIT 2",
            "SELECT id FROM {t} ORDER BY tag LIMIT 3 OFFSET 1",
            "SELECT id FROM {t} WHERE tag IS NULL",
            "SELECT id FROM {t} WHERE tag LIKE 'k2%' ORDER BY id",
            "SELECT count(*), sum(bal) FROM {t}",
            "SELECT id FROM {t} ORDER BY id DESC LIMIT 2",
        ]
        for q in queries:
            self.assertEqual(self.all(q.format(t="acc")), self.all(q.format(t="nat")), q)
        a.execute("COMMIT")
        for q in queries:
            self.assertEqual(self.all(q.format(t="acc"), self.b), self.all(q.format(t="nat")), q)

    # ---- atomic commit of several tables -------------------------------------------------------------

    def test_commit_is_one_request_and_atomic(self):
        self.seed()
        a = self.a
        before = a.execute("SELECT tarn_request_count()").fetchone()[0]
        a.execute("BEGIN")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.k1', '1'), ('users.k2', '2')")
        a.execute("INSERT INTO acc VALUES (10, 'x', 1, 'x'), (11, 'y', 2, 'y')")
        a.execute("COMMIT")
        self.assertEqual(a.execute("SELECT tarn_request_count()").fetchone()[0] - before, 1)
        # a failing row in the collection undoes the tree writes of the same transaction
        a.execute("BEGIN")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.k3', '3')")
        a.execute("INSERT INTO acc VALUES (1, 'dup', 0, 'z')")
        with self.assertRaises(sqlite3.IntegrityError) as cm:
            a.execute("COMMIT")
        self.assertIn("ROW_EXISTS: row id=1 of 'acc' already exists", str(cm.exception))
        self.assertEqual(self.all("SELECT count(*) FROM kv WHERE key = 'users.k3'", self.b), [(0,)])
        self.assertEqual(self.all("SELECT owner FROM acc WHERE id = 1", self.b), [("ann",)])
        # and a failing tree op undoes the collection writes
        a.execute("BEGIN")
        a.execute("INSERT INTO acc VALUES (12, 'z', 3, 'z')")
        a.execute("INSERT INTO kv(key, value) VALUES ('nodir.k', 'v')")
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            a.execute("COMMIT")
        self.assertIn("PARENT_DIR_NOT_EXISTS", str(cm.exception))
        if a.in_transaction:
            a.execute("ROLLBACK")
        self.assertEqual(self.all("SELECT count(*) FROM acc WHERE id = 12", self.b), [(0,)])

    def test_autocommit_statement_is_one_request(self):
        self.seed()
        a = self.a
        before = a.execute("SELECT tarn_request_count()").fetchone()[0]
        a.execute("INSERT INTO acc VALUES (20, 'q', 1, 'q')")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.q', 'q')")
        self.assertEqual(a.execute("SELECT tarn_request_count()").fetchone()[0] - before, 2)
        self.all("SELECT * FROM acc WHERE id = 20")  # planning statistics are refreshed after a commit
        before = a.execute("SELECT tarn_request_count()").fetchone()[0]
        self.all("SELECT * FROM acc WHERE id = 20")
        self.all("SELECT value FROM kv WHERE key = 'users.q'")
        self.assertEqual(a.execute("SELECT tarn_request_count()").fetchone()[0] - before, 2)

    # ---- conflicts: rows read, rows written, absent rows, ranges --------------------------------------

    def test_row_read_then_changed_conflicts(self):
        self.seed()
        a, b = self.a, self.b
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 1"), [(100,)])
        b.execute("UPDATE acc SET bal = 0 WHERE id = 1")
        a.execute("UPDATE acc SET bal = 1 WHERE id = 2")
        msg = self.assert_busy(a, "COMMIT", "row id=1 of 'acc'", "changed since it was read")
        self.assertIn("REVISION_MISMATCH", msg)
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 2"), [(50,)])

    def test_lost_update_prevented(self):
        self.seed()
        a, b = self.a, self.b
        a.execute("BEGIN")
        b.execute("BEGIN")
        a.execute("UPDATE acc SET bal = bal + 1 WHERE id = 1")
        b.execute("UPDATE acc SET bal = bal + 10 WHERE id = 1")
        b.execute("COMMIT")
        self.assert_busy(a, "COMMIT", "row id=1 of 'acc'")
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 1"), [(110,)])

    def test_kv_key_read_then_changed_or_created_conflicts(self):
        self.seed()
        a, b = self.a, self.b
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.ann'"), [("a",)])
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.zed'"), [])
        b.execute("REPLACE INTO kv(key, value) VALUES ('users.zed', 'z')")
        a.execute("INSERT INTO acc VALUES (30, 'w', 1, 'w')")
        self.assert_busy(a, "COMMIT", "'users.zed'", "was created since it was read")
        self.assertEqual(self.all("SELECT count(*) FROM acc WHERE id = 30"), [(0,)])
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.ann'"), [("a",)])
        b.execute("UPDATE kv SET value = 'A' WHERE key = 'users.ann'")
        a.execute("INSERT INTO acc VALUES (30, 'w', 1, 'w')")
        self.assert_busy(a, "COMMIT", "'users.ann'", "changed since it was read")

    def test_phantoms_are_detected(self):
        self.seed()
        a, b = self.a, self.b
        # a range query of a collection
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT count(*) FROM acc WHERE tag >= 'k2'"), [(2,)])
        b.execute("INSERT INTO acc VALUES (40, 'new', 1, 'k7')")
        a.execute("UPDATE acc SET bal = 0 WHERE id = 1")
        self.assert_busy(a, "COMMIT", "TXN_CONFLICT", "'acc'", "range")
        # an insert outside the range does not conflict
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT count(*) FROM acc WHERE tag >= 'k5'"), [(1,)])
        b.execute("INSERT INTO acc VALUES (41, 'new', 1, 'a0')")
        a.execute("UPDATE acc SET bal = 0 WHERE id = 1")
        a.execute("COMMIT")
        # a directory listing
        a.execute("BEGIN")
        self.assertEqual(len(self.all("SELECT key FROM kv WHERE parent = 'users'")), 2)
        b.execute("INSERT INTO kv(key, value) VALUES ('users.late', 'l')")
        a.execute("INSERT INTO kv(key, value) VALUES ('other', 'o')")
        self.assert_busy(a, "COMMIT", "'users'", "changed since it was read")
        self.assertEqual(self.all("SELECT count(*) FROM kv WHERE key = 'other'"), [(0,)])

    def test_read_only_transaction_sends_nothing(self):
        self.seed()
        a = self.a
        a.execute("BEGIN")
        self.all("SELECT * FROM acc WHERE id = 1")
        before = a.execute("SELECT tarn_request_count()").fetchone()[0]
        a.execute("COMMIT")
        self.assertEqual(a.execute("SELECT tarn_request_count()").fetchone()[0], before)

    def test_isolation_boundary_read_only_vs_write(self):
        """The documented boundary: a read-only transaction is read committed across statements; the same
        reads in a transaction that writes are validated (serializable)."""
        self.seed()
        a, b = self.a, self.b
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 1"), [(100,)])
        b.execute("UPDATE acc SET bal = 99 WHERE id = 1")
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 1"), [(99,)])  # a newer revision
        a.execute("COMMIT")  # read-only: nothing to validate, succeeds
        a.execute("BEGIN")
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 1"), [(99,)])
        b.execute("UPDATE acc SET bal = 98 WHERE id = 1")
        self.assertEqual(self.all("SELECT bal FROM acc WHERE id = 1"), [(98,)])
        a.execute("UPDATE acc SET bal = 0 WHERE id = 3")  # now it writes: the first read is validated
        self.assert_busy(a, "COMMIT", "row id=1 of 'acc'", "changed since it was read")

    # ---- savepoints, statement rollback, rollback ----------------------------------------------------

    def test_savepoints(self):
        self.seed()
        a = self.a
        a.execute("BEGIN")
        a.execute("INSERT INTO acc VALUES (50, 'p', 1, 'p')")
        a.execute("INSERT INTO kv(key, value) VALUES ('users.p', 'p')")
        a.execute("SAVEPOINT s1")
        a.execute("INSERT INTO acc VALUES (51, 'q', 1, 'q')")
        a.execute("UPDATE kv SET value = 'P2' WHERE key = 'users.p'")
        a.execute("SAVEPOINT s2")
        a.execute("DELETE FROM acc WHERE id = 1")
        a.execute("ROLLBACK TO s2")
        self.assertEqual(self.all("SELECT id FROM acc WHERE id IN (1, 50, 51) ORDER BY id"), [(1,), (50,), (51,)])
        a.execute("ROLLBACK TO s1")
        self.assertEqual(self.all("SELECT id FROM acc WHERE id IN (1, 50, 51) ORDER BY id"), [(1,), (50,)])
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.p'"), [("p",)])
        a.execute("INSERT INTO acc VALUES (52, 'r', 1, 'r')")
        a.execute("RELEASE s1")
        a.execute("COMMIT")
        self.assertEqual(self.all("SELECT id FROM acc WHERE id >= 50 ORDER BY id", self.b), [(50,), (52,)])
        self.assertEqual(self.all("SELECT value FROM kv WHERE key = 'users.p'", self.b), [("p",)])

    def test_failed_statement_is_rolled_back_alone(self):
        self.seed()
        a = self.a
        a.execute("BEGIN")
        a.execute("INSERT INTO acc VALUES (60, 'ok', 1, 'a')")
        with self.assertRaises(sqlite3.IntegrityError):
            a.execute("INSERT INTO acc VALUES (61, 'x', 1, 'b'), (NULL, 'bad', 1, 'c')")
        with self.assertRaises(sqlite3.IntegrityError):
            a.execute("INSERT INTO kv(key, value) VALUES ('users.s1', '1'), ('users.s2', NULL)")
        self.assertEqual(self.all("SELECT id FROM acc WHERE id >= 60"), [(60,)])
        self.assertEqual(self.all("SELECT key FROM kv WHERE key IN ('users.s1', 'users.s2')"), [])
        a.execute("COMMIT")
        self.assertEqual(self.all("SELECT id FROM acc WHERE id >= 60", self.b), [(60,)])
        self.assertEqual(self.all("SELECT key FROM kv WHERE key = 'users.s1'", self.b), [])
        # autocommit: a multi-row statement that fails applies nothing
        with self.assertRaises(sqlite3.IntegrityError):
            a.execute("INSERT INTO kv(key, value) VALUES ('users.s3', '3'), ('users.s4', NULL)")
        self.assertEqual(self.all("SELECT key FROM kv WHERE key = 'users.s3'", self.b), [])

    def test_rollback_leaves_store_unchanged(self):
        self.seed()
        a = self.a
        snap = (self.all("SELECT * FROM acc ORDER BY id", self.b), self.all("SELECT key, value FROM kv", self.b))
        a.execute("BEGIN")
        a.execute("UPDATE acc SET bal = 0")
        a.execute("DELETE FROM kv WHERE key = 'users.ann'")
        a.execute("INSERT INTO kv(key, value) VALUES ('x', 'x')")
        a.execute("ROLLBACK")
        self.assertEqual((self.all("SELECT * FROM acc ORDER BY id", self.b),
                          self.all("SELECT key, value FROM kv", self.b)), snap)

    def test_too_large_transaction_fails_cleanly(self):
        a = self.a
        a.execute("BEGIN")
        blob = b"x" * (1024 * 1024)
        with self.assertRaises(sqlite3.DataError) as cm:
            for i in range(80):
                a.execute("INSERT INTO kv(key, value) VALUES (?, ?)", (f"big{i}", blob))
        self.assertIn("TOO_LARGE", str(cm.exception))
        a.execute("ROLLBACK")
        self.assertEqual(self.all("SELECT count(*) FROM kv", self.b), [(0,)])

    def test_native_table_in_the_same_transaction(self):
        self.seed()
        a = self.a
        a.execute("CREATE TEMP TABLE audit(n INTEGER)")
        a.execute("BEGIN")
        a.execute("INSERT INTO audit VALUES (1)")
        a.execute("UPDATE acc SET bal = bal - 1 WHERE id = 1")
        a.execute("COMMIT")
        self.assertEqual(self.all("SELECT count(*) FROM audit"), [(1,)])
        # a remote conflict fails COMMIT before SQLite commits its own file: the native write goes too
        a.execute("BEGIN")
        a.execute("INSERT INTO audit VALUES (2)")
        a.execute("UPDATE acc SET bal = bal - 1 WHERE id = 1")
        self.b.execute("UPDATE acc SET bal = 0 WHERE id = 1")
        self.assert_busy(a, "COMMIT", "row id=1 of 'acc'")
        self.assertEqual(self.all("SELECT count(*) FROM audit"), [(1,)])


if __name__ == "__main__":
    unittest.main()
