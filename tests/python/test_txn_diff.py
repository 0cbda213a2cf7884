"""Differential test of transactions (issue 6): random single-connection sequences — BEGIN, inserts,
updates, deletes, SAVEPOINT / ROLLBACK TO / RELEASE, reads in between, COMMIT or ROLLBACK, failing
statements — run against Tarn tables (tarn and tarn_kv, embedded engine) and native SQLite tables must
give the same query results at every step and the same final state.

Plain INSERT of a key that exists in the store is left out on purpose: inside BEGIN … COMMIT Tarn
reports it at COMMIT, not at the statement (docs/transactions.md); OR IGNORE / OR REPLACE and keys
written earlier in the transaction behave as natively."""
import os
import random
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from tarn_test_util import connect  # noqa: E402

SEEDS = int(os.environ.get("TARN_DIFF_SEEDS", "40"))
STEPS = 60


class TxnDiffTest(unittest.TestCase):
    def run_seed(self, seed):
        rng = random.Random(seed)
        db = connect()
        engine = f"txndiff{seed}"
        db.execute("CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, grp TEXT INDEXED, tag TEXT ORDERED, "
                   f"v INTEGER, engine='{engine}')")
        db.execute("CREATE TABLE n(id INTEGER PRIMARY KEY, grp TEXT, tag TEXT, v INTEGER) WITHOUT ROWID")
        db.execute(f"CREATE VIRTUAL TABLE kv USING tarn_kv(engine='{engine}')")
        db.execute("CREATE TABLE nkv(key TEXT PRIMARY KEY, value, parent TEXT)")
        for k in ("d1", "d2"):
            db.execute("INSERT INTO kv(key, is_dir) VALUES (?, 1)", (k,))
        log = []
        in_txn = False
        savepoints = []

        def both(sql_t, sql_n, args=()):
            """Runs a write on both sides; both must fail or both succeed."""
            err = []
            for sql in (sql_t, sql_n):
                try:
                    db.execute(sql, args)
                    err.append(None)
                except sqlite3.Error as e:
                    err.append(type(e).__name__)
            log.append((sql_t, args, err))
            self.assertEqual(err[0] is None, err[1] is None, f"seed {seed}: {sql_t} {args}: {err}\n{log}")

        def same(sql_t, sql_n, args=()):
            got = db.execute(sql_t, args).fetchall()
            want = db.execute(sql_n, args).fetchall()
            log.append((sql_t, args))
            self.assertEqual(got, want, f"seed {seed}: {sql_t} {args}\n{log}")

        def kv_key():
            return f"d{rng.randint(1, 2)}.k{rng.randint(0, 6)}"

        for _ in range(STEPS):
            r = rng.random()
            i = rng.randint(0, 12)
            g = rng.choice(["a", "b", "c", None])
            tag = rng.choice([f"t{rng.randint(0, 9)}", None])
            if r < 0.08 and not in_txn:
                db.execute("BEGIN")
                in_txn = True
            elif r < 0.14 and in_txn:
                end = rng.choice(["COMMIT", "ROLLBACK"])
                db.execute(end)
                in_txn = False
                savepoints = []
            elif r < 0.20 and in_txn:
                name = f"s{len(savepoints)}"
                db.execute(f"SAVEPOINT {name}")
                savepoints.append(name)
            elif r < 0.25 and savepoints:
                k = rng.randrange(len(savepoints))
                if rng.random() < 0.6:
                    db.execute(f"ROLLBACK TO {savepoints[k]}")
                    del savepoints[k + 1:]
                else:
                    db.execute(f"RELEASE {savepoints[k]}")
                    del savepoints[k:]
            elif r < 0.35:
                verb = rng.choice(["INSERT OR REPLACE", "INSERT OR IGNORE"])
                both(f"{verb} INTO t VALUES (?, ?, ?, ?)", f"{verb} INTO n VALUES (?, ?, ?, ?)",
                     (i, g, tag, rng.randint(0, 99)))
            elif r < 0.40:
                # multi-row insert whose last row fails (NULL pk): the statement is rolled back alone
                both("INSERT OR REPLACE INTO t VALUES (?, 'z', 'z', 1), (NULL, 'z', 'z', 1)",
                     "INSERT OR REPLACE INTO n VALUES (?, 'z', 'z', 1), (NULL, 'z', 'z', 1)", (i,))
            elif r < 0.47:
                both("UPDATE t SET v = v + 1, tag = ? WHERE id = ?", "UPDATE n SET v = v + 1, tag = ? WHERE id = ?",
                     (tag, i))
            elif r < 0.51:
                both("UPDATE t SET v = v * 2 WHERE grp = ?", "UPDATE n SET v = v * 2 WHERE grp = ?", (g,))
            elif r < 0.54:
                both("UPDATE OR REPLACE t SET id = ? WHERE id = ?", "UPDATE OR REPLACE n SET id = ? WHERE id = ?",
                     (rng.randint(0, 12), i))
            elif r < 0.60:
                both("DELETE FROM t WHERE id = ?", "DELETE FROM n WHERE id = ?", (i,))
            elif r < 0.62:
                both("DELETE FROM t WHERE tag < ?", "DELETE FROM n WHERE tag < ?", (f"t{rng.randint(0, 3)}",))
            elif r < 0.70:
                k = kv_key()
                val = f"v{rng.randint(0, 99)}"
                both("REPLACE INTO kv(key, value) VALUES (?1, ?2)", "REPLACE INTO nkv VALUES (?1, ?2, substr(?1, 1, 2))",
                     (k, val))
            elif r < 0.74:
                k = kv_key()
                both("DELETE FROM kv WHERE key = ?", "DELETE FROM nkv WHERE key = ?", (k,))
            elif r < 0.77:
                both("UPDATE kv SET value = value || 'x' WHERE key = ?", "UPDATE nkv SET value = value || 'x' WHERE key = ?",
                     (kv_key(),))
            else:
                q = rng.randint(0, 9)
                if q == 0:
                    same("SELECT * FROM t WHERE id = ?", "SELECT * FROM n WHERE id = ?", (i,))
                elif q == 1:
                    same("SELECT id, v FROM t WHERE grp = ? ORDER BY id", "SELECT id, v FROM n WHERE grp = ? ORDER BY id", (g,))
                elif q == 2:
                    lo = f"t{rng.randint(0, 9)}"
                    same("SELECT id, tag FROM t WHERE tag >= ? ORDER BY tag, id LIMIT 3 OFFSET 1",
                         "SELECT id, tag FROM n WHERE tag >= ? ORDER BY tag, id LIMIT 3 OFFSET 1", (lo,))
                elif q == 3:
                    same("SELECT id FROM t WHERE id IN (1, 3, 5, 7, 9) ORDER BY id",
                         "SELECT id FROM n WHERE id IN (1, 3, 5, 7, 9) ORDER BY id")
                elif q == 4:
                    same("SELECT count(*), sum(v) FROM t", "SELECT count(*), sum(v) FROM n")
                elif q == 5:
                    same("SELECT id FROM t ORDER BY tag DESC, id DESC LIMIT 4",
                         "SELECT id FROM n ORDER BY tag DESC, id DESC LIMIT 4")
                elif q == 6:
                    d = f"d{rng.randint(1, 2)}"
                    same("SELECT key, value FROM kv WHERE parent = ? ORDER BY key",
                         "SELECT key, value FROM nkv WHERE parent = ? ORDER BY key", (d,))
                elif q == 7:
                    same("SELECT value FROM kv WHERE key = ?", "SELECT value FROM nkv WHERE key = ?", (kv_key(),))
                elif q == 8:
                    same("SELECT key FROM kv WHERE key IN ('d1.k1', 'd2.k2', 'd1.k5') ORDER BY key",
                         "SELECT key FROM nkv WHERE key IN ('d1.k1', 'd2.k2', 'd1.k5') ORDER BY key")
                else:
                    same("SELECT key, value FROM kv WHERE is_dir = 0 ORDER BY key",
                         "SELECT key, value FROM nkv ORDER BY key")
        if in_txn:
            db.execute(rng.choice(["COMMIT", "ROLLBACK"]))
        same("SELECT * FROM t ORDER BY id", "SELECT * FROM n ORDER BY id")
        same("SELECT key, value FROM kv WHERE is_dir = 0 ORDER BY key", "SELECT key, value FROM nkv ORDER BY key")
        # and as another connection sees the store
        other = connect()
        other.execute("CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, grp TEXT INDEXED, tag TEXT ORDERED, "
                      f"v INTEGER, engine='{engine}')")
        self.assertEqual(other.execute("SELECT * FROM t ORDER BY id").fetchall(),
                         db.execute("SELECT * FROM n ORDER BY id").fetchall(), f"seed {seed}")
        other.close()
        db.close()

    def test_random_sequences(self):
        for seed in range(SEEDS):
            self.run_seed(seed)


if __name__ == "__main__":
    unittest.main()
