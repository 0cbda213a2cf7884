#!/usr/bin/env python3
"""SQL-level benchmark of tarn collection tables against a native SQLite table with the same indexes, in the
same run (figures are ratios tarn/native). Loops run inside SQLite (recursive CTEs with correlated
subqueries) so Python's call overhead does not dilute the comparison.

  TARN_BUILD_DIR=build /usr/bin/python3 tests/bench/bench_coll_sql.py [rows]      (default 1000000)
Use a Release build of tarn.so. Memory is the process RSS growth while loading (embedded engine: the store
lives in this process), per row.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from tarn_test_util import connect  # noqa: E402

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
# TARN_BENCH_CLUSTER=urls measures a raftnet cluster instead of the embedded engine.
WHERE = f"cluster='{os.environ['TARN_BENCH_CLUSTER']}'" if os.environ.get("TARN_BENCH_CLUSTER") else "engine='bench'"
KINDS = max(1, ROWS // 50)  # ~50 rows per kind


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(db, sql, params=()):
    t = time.perf_counter()
    r = db.execute(sql, params).fetchall()
    return time.perf_counter() - t, r


def main():
    db = connect()
    db.execute("CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, kind INTEGER INDEXED, day TEXT ORDERED, "
               f"n INTEGER, note TEXT, {WHERE})")
    db.execute("CREATE TABLE nt(id INTEGER PRIMARY KEY, kind INTEGER, day TEXT, n INTEGER, note TEXT)")
    db.execute("CREATE INDEX nt_kind ON nt(kind)")
    db.execute("CREATE INDEX nt_day ON nt(day)")
    gen = (f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ROWS}) "
           f"SELECT i, (i * 7919) % {KINDS}, printf('%08d', (i * 104729) % {ROWS}), i % 1000, 'n' || i FROM s")
    results = []

    def pair(label, sql_t, sql_n, per=1):
        tt, rt = timed(db, sql_t)
        tn, rn = timed(db, sql_n)
        assert rt == rn, (label, rt[:3], rn[:3])
        results.append((label, tt / per, tn / per))

    m0 = rss()
    db.execute("BEGIN")
    t0 = time.perf_counter()
    db.execute("INSERT INTO t " + gen)
    db.execute("COMMIT")
    t_load = time.perf_counter() - t0
    m1 = rss()
    db.execute("BEGIN")
    t0 = time.perf_counter()
    db.execute("INSERT INTO nt " + gen)
    db.execute("COMMIT")
    n_load = time.perf_counter() - t0
    m2 = rss()
    results.append((f"bulk load {ROWS} rows, one transaction (s)", t_load, n_load))

    q = 20000
    ser = f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {q}) "
    pair("point query by key (us/query)",
         ser + f"SELECT sum((SELECT n FROM t WHERE id = 1 + (i * 7727) % {ROWS})) FROM s",
         ser + f"SELECT sum((SELECT n FROM nt WHERE id = 1 + (i * 7727) % {ROWS})) FROM s", q / 1e6)
    q2 = 2000
    ser2 = f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {q2}) "
    pair("indexed = returning ~50 rows (us/query)",
         ser2 + f"SELECT sum((SELECT sum(n) FROM t WHERE kind = (i * 31) % {KINDS})) FROM s",
         ser2 + f"SELECT sum((SELECT sum(n) FROM nt WHERE kind = (i * 31) % {KINDS})) FROM s", q2 / 1e6)
    pair("range + ORDER BY .. LIMIT 10 (us/query)",
         ser2 + f"SELECT sum((SELECT sum(id) FROM (SELECT id FROM t WHERE day >= printf('%08d', (i * 7) % {ROWS}) "
         "ORDER BY day LIMIT 10))) FROM s",
         ser2 + f"SELECT sum((SELECT sum(id) FROM (SELECT id FROM nt WHERE day >= printf('%08d', (i * 7) % {ROWS}) "
         "ORDER BY day LIMIT 10))) FROM s", q2 / 1e6)
    keys = ",".join(str(1 + (k * 9973) % ROWS) for k in range(100))
    reps = 500
    tt = tn = 0.0
    for _ in range(reps):
        a, ra = timed(db, f"SELECT sum(n) FROM t WHERE id IN ({keys})")
        b, rb = timed(db, f"SELECT sum(n) FROM nt WHERE id IN ({keys})")
        assert ra == rb
        tt, tn = tt + a, tn + b
    results.append(("IN of 100 keys (us/query)", tt / reps * 1e6, tn / reps * 1e6))
    results.append(("memory per row (bytes, RSS growth)", (m1 - m0) / ROWS, (m2 - m1) / ROWS))

    print(f"{'benchmark':48} {'tarn':>12} {'native':>12} {'ratio':>8}")
    for label, a, b in results:
        print(f"{label:48} {a:12.3f} {b:12.3f} {a / b if b else float('inf'):8.2f}")


if __name__ == "__main__":
    main()
