"""The SQLite result codes of Tarn failures, through both virtual tables (`tarn` and `tarn_kv`).

Both tables share one request call and one code mapping (ext/vtab/vtab_base.c), so the same failure gives the
same SQLite code through either: these tests run each case through both and assert the code itself
(sqlite_errorcode), not only the exception class.
"""
import os
import sqlite3
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__ in tests/)
from tarn_test_util import connect  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
import harness  # noqa: E402

SQLITE_BUSY = 5
SQLITE_PERM = 3
SQLITE_TOOBIG = 18
SQLITE_CONSTRAINT = 19
LIMIT = 64 << 20  # the wire's request and response limit (TN_WIRE_MAX_MESSAGE)


def tables(db, where):
    db.execute(f"CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, tag TEXT INDEXED, body BLOB, {where})")
    db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv({where})")


def fill_past_the_limit(db):
    """Stores more than one response can carry in each table: 5 rows of 15 MB in `t`, 70 values of 1 MB
    (the tree's value limit) in `kv`, so a query over all of them is answered TOO_LARGE."""
    for i in range(5):
        db.execute("INSERT INTO t VALUES (?, 'a', randomblob(15000000))", (i,))
    for i in range(70):
        db.execute("INSERT INTO kv(key, value) VALUES (?, randomblob(1000000))", (f"k{i:02d}",))


class CodesTest(unittest.TestCase):
    def assertCode(self, db, sql, code, text, args=()):
        with self.assertRaises(sqlite3.Error) as cm:
            db.execute(sql, args).fetchall()
        self.assertEqual(cm.exception.sqlite_errorcode, code, str(cm.exception))
        self.assertIn(text, str(cm.exception))
        if db.in_transaction:
            db.execute("ROLLBACK")

    def check_answer_too_large(self, db):
        """A statement whose answer exceeds the response limit fails with SQLITE_TOOBIG through both tables,
        reads and writes (an UPDATE must read its rows first), and nothing is written."""
        for sql in ("SELECT id, length(body) FROM t", "UPDATE t SET tag = 'b'",
                    "SELECT key, length(value) FROM kv", "UPDATE kv SET value = 'x'"):
            self.assertCode(db, sql, SQLITE_TOOBIG, "TOO_LARGE")
        self.assertEqual(db.execute("SELECT count(*) FROM t WHERE tag = 'a'").fetchone()[0], 5)
        self.assertEqual(db.execute("SELECT count(*) FROM kv WHERE key = 'k00' AND value = 'x'").fetchone()[0], 0)


class EmbeddedTest(CodesTest):
    def setUp(self):
        self.where = f"engine='codes{id(self)}'"
        self.db = self.open()

    def open(self):
        db = connect()
        self.addCleanup(db.close)
        tables(db, self.where)
        return db

    def test_answer_too_large_is_toobig_in_both_tables(self):
        fill_past_the_limit(self.db)
        self.check_answer_too_large(self.db)

    def test_constraint_and_conflict_codes_match_in_both_tables(self):
        db, other = self.db, self.open()
        db.execute("INSERT INTO t VALUES (1, 'a', NULL)")
        db.execute("INSERT INTO kv(key, value) VALUES ('k', 'v')")
        self.assertCode(db, "INSERT INTO t VALUES (1, 'b', NULL)", SQLITE_CONSTRAINT, "ROW_EXISTS")
        self.assertCode(db, "INSERT INTO kv(key, value) VALUES ('k', 'w')", SQLITE_CONSTRAINT, "VALUE_EXISTS")
        # a row changed by another connection between the read and the commit: a conflict
        for read, write, change in (("SELECT tag FROM t WHERE id = 1", "UPDATE t SET tag = 'x' WHERE id = 1",
                                     "UPDATE t SET tag = 'y' WHERE id = 1"),
                                    ("SELECT value FROM kv WHERE key = 'k'", "UPDATE kv SET value = 'x' WHERE key = 'k'",
                                     "UPDATE kv SET value = 'y' WHERE key = 'k'")):
            db.execute("BEGIN")
            db.execute(read).fetchall()
            db.execute(write)
            other.execute(change)
            self.assertCode(db, "COMMIT", SQLITE_BUSY, "REVISION_MISMATCH")

    def test_tree_errors_read_the_same_at_the_statement_and_at_commit(self):
        """tarn_kv words a failed tree op with one table of reasons (ext/client/sql_code.c), whether the
        statement fails at once or the transaction's COMMIT does (another connection created the key after
        this transaction buffered its INSERT)."""
        db, other = self.db, self.open()
        db.execute("INSERT INTO kv(key, is_dir) VALUES ('d', 1)")
        db.execute("INSERT INTO kv(key, value) VALUES ('d.x', 'v')")
        self.assertCode(db, "INSERT INTO kv(key, is_dir) VALUES ('d', 1)", SQLITE_CONSTRAINT,
                        "DIR_EXISTS: 'd' is a directory that already exists")
        self.assertCode(db, "INSERT INTO kv(key, value) VALUES ('d.x', 'w')", SQLITE_CONSTRAINT,
                        "VALUE_EXISTS: 'd.x' already exists")
        db.execute("BEGIN")
        db.execute("INSERT INTO kv(key, value) VALUES ('d.y', 'mine')")
        other.execute("INSERT INTO kv(key, value) VALUES ('d.y', 'theirs')")
        self.assertCode(db, "COMMIT", SQLITE_CONSTRAINT, "VALUE_EXISTS: 'd.y' already exists")
        self.assertEqual(db.execute("SELECT value FROM kv WHERE key = 'd.y'").fetchone()[0], "theirs")

    def test_not_owner_is_perm_at_the_statement_and_at_commit(self):
        db, other = self.db, self.open()
        db.execute("INSERT INTO kv(key, value, ttl_ms) VALUES ('lock', 'me', 60000)")
        self.assertCode(other, "DELETE FROM kv WHERE key = 'lock'", SQLITE_PERM, "NOT_OWNER")
        other.execute("BEGIN")
        other.execute("UPDATE kv SET ttl_ms = 5 WHERE key = 'lock'")
        self.assertCode(other, "COMMIT", SQLITE_PERM, "NOT_OWNER")
        self.assertEqual(db.execute("SELECT ttl_ms FROM kv WHERE key = 'lock'").fetchone()[0], 60000)

    def test_too_large_row_is_toobig_in_both_tables(self):
        big = "randomblob(17000000)"  # above the row payload limit (16 MiB) and the wire's value cap
        self.assertCode(self.db, f"INSERT INTO t VALUES (1, 'a', {big})", SQLITE_TOOBIG, "TOO_LARGE")
        self.assertCode(self.db, f"INSERT INTO kv(key, value) VALUES ('a', {big})", SQLITE_TOOBIG, "TOO_LARGE")
        self.assertCode(self.db, "INSERT INTO t VALUES (1, ?, NULL)", SQLITE_TOOBIG, "TOO_LARGE",
                        ("i" * 70000,))  # an index value above 64 KiB
        self.assertEqual(self.db.execute("SELECT count(*) FROM t").fetchone()[0], 0)
        self.assertEqual(self.db.execute("SELECT count(*) FROM kv").fetchone()[0], 0)

    def test_too_large_transaction_is_toobig_in_both_tables(self):
        for sql, rows in (("INSERT INTO t VALUES (?, 'a', randomblob(4000000))", 20),
                          ("INSERT INTO kv(key, value) VALUES (?, randomblob(1000000))", 80)):
            self.db.execute("BEGIN")
            with self.assertRaises(sqlite3.Error) as cm:
                for i in range(rows):
                    self.db.execute(sql, (str(i) if "kv" in sql else i,))
            self.assertEqual(cm.exception.sqlite_errorcode, SQLITE_TOOBIG, str(cm.exception))
            self.assertIn("TOO_LARGE", str(cm.exception))
            self.db.execute("ROLLBACK")
        self.assertEqual(self.db.execute("SELECT count(*) FROM t").fetchone()[0], 0)
        self.assertEqual(self.db.execute("SELECT count(*) FROM kv").fetchone()[0], 0)


@unittest.skipUnless(os.access(harness.RAFTNET, os.X_OK), "raftnet not built")
class ClusterTest(CodesTest):
    """A member answers a request whose response would exceed the limit with a response-level TOO_LARGE
    (raftnet/node/node.c), which the request call must report as SQLITE_TOOBIG through both tables."""

    def setUp(self):
        c = harness.Cluster(1, ["--tick-ms", "10", "--election-ticks", "20", "--heartbeat-ticks", "2"])
        self.addCleanup(c.cleanup)
        self.addCleanup(lambda: self.assertEqual(c.sanitizer_reports(), []))
        self.addCleanup(c.stop_all)
        c.start_all()
        c.wait_leader()
        self.db = connect()
        self.addCleanup(self.db.close)
        # 75 MB of writes: under the sanitizers a 15 MB write can outlast the default 5 s deadline on a busy
        # machine, and that is not what this test is about.
        tables(self.db, f"cluster='{c.urls[1]}', timeout_ms=60000")

    def test_answer_too_large_is_toobig_in_both_tables(self):
        fill_past_the_limit(self.db)
        self.check_answer_too_large(self.db)


if __name__ == "__main__":
    unittest.main(verbosity=2)
