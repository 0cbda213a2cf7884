"""The embedded engine with data='DIR': everything a statement wrote survives closing the connection and a
new process (the log is fsynced before a write returns; reopening replays snapshot + log)."""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import connect  # noqa: E402

CHILD = r'''
import sys
sys.path.insert(0, sys.argv[1])
from tarn_test_util import connect
db = connect()
db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(data='{sys.argv[2]}')")
db.execute(f"CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, tag TEXT INDEXED, data='{sys.argv[2]}')")
if sys.argv[3] == "write":
    db.execute("INSERT INTO kv(key, is_dir) VALUES ('cfg', 1)")
    db.executemany("INSERT INTO kv(key, value) VALUES (?, ?)", [(f"cfg.k{i}", f"v{i}") for i in range(200)])
    db.execute("BEGIN")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "even" if i % 2 == 0 else "odd") for i in range(500)])
    db.execute("COMMIT")
    db.execute("UPDATE kv SET value = 'changed' WHERE key = 'cfg.k7'")
    db.execute("DELETE FROM t WHERE id = 3")
else:
    print(db.execute("SELECT count(*) FROM kv WHERE parent = 'cfg'").fetchone()[0],
          db.execute("SELECT value FROM kv WHERE key = 'cfg.k7'").fetchone()[0],
          db.execute("SELECT count(*) FROM t WHERE tag = 'even'").fetchone()[0],
          db.execute("SELECT count(*) FROM t").fetchone()[0])
db.close()
'''


class PersistTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tarn-persist-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def child(self, mode):
        data = os.path.join(self.dir, "store")
        out = subprocess.run([sys.executable, "-c", CHILD, os.path.dirname(__file__), data, mode],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def test_survives_a_new_process(self):
        self.child("write")
        self.assertEqual(self.child("read"), "200 changed 250 499")
        self.assertEqual(self.child("read"), "200 changed 250 499")  # and a second reopen

    def test_same_connection_reopen(self):
        data = os.path.join(self.dir, "s2")
        db = connect()
        db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(data='{data}')")
        db.execute("INSERT INTO kv(key, value) VALUES ('a', '1')")
        db.close()
        db = connect()
        db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(data='{data}')")
        self.assertEqual(db.execute("SELECT value FROM kv WHERE key = 'a'").fetchone()[0], "1")
        db.close()

    def test_a_second_process_is_refused_while_the_store_is_open(self):
        data = os.path.join(self.dir, "locked")
        db = connect()
        db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(data='{data}')")
        db.execute("INSERT INTO kv(key, value) VALUES ('mine', '1')")
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from tarn_test_util import connect; "
                "db = connect(); db.execute(f\"CREATE VIRTUAL TABLE kv USING tarn_kv(data='{sys.argv[2]}')\")")
        out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), data],
                             capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("in use", out.stderr)
        db.close()
        self.assertEqual(self.child_read_mine(data), "1")

    def child_read_mine(self, data):
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from tarn_test_util import connect; "
                "db = connect(); db.execute(f\"CREATE VIRTUAL TABLE kv USING tarn_kv(data='{sys.argv[2]}')\"); "
                "print(db.execute(\"SELECT value FROM kv WHERE key = 'mine'\").fetchone()[0])")
        out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), data],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def test_bad_combinations(self):
        db = connect()
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            db.execute("CREATE VIRTUAL TABLE kv USING tarn_kv(data='/tmp/x', cluster='tcp://127.0.0.1:1')")
        self.assertIn("exclude each other", str(cm.exception))
        blocker = os.path.join(self.dir, "file")
        open(blocker, "w").close()
        with self.assertRaises(sqlite3.DatabaseError) as cm:
            db.execute(f"CREATE VIRTUAL TABLE kv2 USING tarn_kv(data='{blocker}/sub')")
        self.assertIn("cannot open", str(cm.exception))
        db.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
