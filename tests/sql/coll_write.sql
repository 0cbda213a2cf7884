-- tarn collection tables: writes, conflict clauses (TryAdd), conditional updates (UpdateIf), transactions
-- and savepoints through the sqlite3 shell. (Concurrent writers: tests/python/test_coll.py.)
.load ./tarn
.headers off
.mode list
CREATE VIRTUAL TABLE acc USING tarn(id INTEGER PRIMARY KEY, owner TEXT INDEXED, bal INTEGER, version INTEGER);
INSERT INTO acc VALUES (1, 'ann', 100, 1), (2, 'bob', 50, 1), (3, 'cy', 0, 1);

SELECT '-- INSERT of an existing key: SQLITE_CONSTRAINT naming the row, nothing of the statement applied';
INSERT INTO acc VALUES (10, 'x', 0, 1), (2, 'dup', 0, 1);
SELECT group_concat(id) FROM (SELECT id FROM acc ORDER BY id);
SELECT '-- a key repeated inside one statement fails at once';
INSERT INTO acc VALUES (11, 'x', 0, 1), (11, 'y', 0, 1);
SELECT count(*) FROM acc WHERE id = 11;

SELECT '-- INSERT OR IGNORE (TryAdd): changes() tells whether it was added';
INSERT OR IGNORE INTO acc VALUES (2, 'ignored', 0, 1);
SELECT changes(), owner FROM acc WHERE id = 2;
INSERT OR IGNORE INTO acc VALUES (4, 'dee', 7, 1);
SELECT changes(), owner FROM acc WHERE id = 4;
INSERT OR IGNORE INTO acc VALUES (4, 'x', 0, 1), (5, 'eve', 5, 1), (5, 'x', 0, 1);
SELECT changes(), group_concat(owner) FROM (SELECT owner FROM acc WHERE id IN (4, 5) ORDER BY id);

SELECT '-- OR FAIL keeps the rows before the failing one; OR ABORT keeps none';
INSERT OR FAIL INTO acc VALUES (20, 'f1', 0, 1), (1, 'dup', 0, 1), (21, 'f2', 0, 1);
SELECT group_concat(id) FROM (SELECT id FROM acc WHERE id >= 20 ORDER BY id);
INSERT OR ABORT INTO acc VALUES (30, 'a1', 0, 1), (1, 'dup', 0, 1), (31, 'a2', 0, 1);
SELECT count(*) FROM acc WHERE id >= 30;

SELECT '-- OR REPLACE upserts';
INSERT OR REPLACE INTO acc VALUES (3, 'cy', 33, 2), (6, 'fay', 6, 1);
SELECT id, bal, version FROM acc WHERE id IN (3, 6) ORDER BY id;
REPLACE INTO acc VALUES (6, 'fay', 66, 2);
SELECT bal FROM acc WHERE id = 6;

SELECT '-- UPDATE / DELETE; UpdateIf on a version column';
UPDATE acc SET version = 2, bal = bal + 1 WHERE id = 1 AND version = 1;
SELECT changes(), bal, version FROM acc WHERE id = 1;
UPDATE acc SET version = 3 WHERE id = 1 AND version = 1;
SELECT changes();
UPDATE acc SET id = 7 WHERE id = 6;
SELECT group_concat(id) FROM (SELECT id FROM acc WHERE id IN (6, 7));
UPDATE acc SET id = 1 WHERE id = 7;
DELETE FROM acc WHERE owner = 'f1';
SELECT changes(), count(*) FROM acc WHERE owner = 'f1';
SELECT '-- datatype rules of the key';
INSERT INTO acc VALUES ('abc', 'x', 0, 1);
INSERT INTO acc VALUES (NULL, 'x', 0, 1);
INSERT INTO acc VALUES ('8', 'eight', '8.0', '1e1');
SELECT id, typeof(id), bal, typeof(bal), version, typeof(version) FROM acc WHERE id = 8;

SELECT '-- a transaction commits as a whole';
BEGIN;
UPDATE acc SET bal = bal - 10 WHERE id = 1;
UPDATE acc SET bal = bal + 10 WHERE id = 2;
SELECT '   inside, reads see the transaction''s own writes:', bal FROM acc WHERE id = 1;
COMMIT;
SELECT id, bal FROM acc WHERE id IN (1, 2) ORDER BY id;
BEGIN;
UPDATE acc SET bal = 0 WHERE id = 1;
ROLLBACK;
SELECT bal FROM acc WHERE id = 1;
SELECT '-- a second UPDATE of the same row in one transaction builds on the first';
BEGIN;
UPDATE acc SET bal = bal + 1 WHERE id = 2;
UPDATE acc SET bal = bal + 1 WHERE id = 2;
COMMIT;
SELECT bal FROM acc WHERE id = 2;

SELECT '-- savepoints: ROLLBACK TO drops exactly the ops after the mark';
BEGIN;
INSERT INTO acc VALUES (40, 'p', 0, 1);
SAVEPOINT a;
INSERT INTO acc VALUES (41, 'q', 0, 1);
SAVEPOINT b;
INSERT INTO acc VALUES (42, 'r', 0, 1);
ROLLBACK TO a;
INSERT INTO acc VALUES (43, 's', 0, 1);
RELEASE a;
SAVEPOINT c;
DELETE FROM acc WHERE id = 5;
ROLLBACK TO c;
COMMIT;
SELECT group_concat(id) FROM (SELECT id FROM acc WHERE id >= 40 OR id = 5 ORDER BY id);
SELECT '-- statement rollback inside a transaction: the failed statement only';
BEGIN;
INSERT INTO acc VALUES (50, 'x', 0, 1);
INSERT INTO acc VALUES (51, 'x', 0, 1), (50, 'dup', 0, 1);
INSERT INTO acc VALUES (52, 'x', 0, 1);
COMMIT;
SELECT group_concat(id) FROM (SELECT id FROM acc WHERE id >= 50 ORDER BY id);
SELECT '-- inside a transaction, a key that exists in the store is reported by COMMIT';
BEGIN;
INSERT INTO acc VALUES (60, 'x', 0, 1);
INSERT INTO acc VALUES (1, 'dup', 0, 1);
COMMIT;
SELECT count(*) FROM acc WHERE id = 60;
SELECT '-- ... and at once with OR FAIL';
BEGIN;
INSERT INTO acc VALUES (61, 'x', 0, 1);
INSERT OR FAIL INTO acc VALUES (1, 'dup', 0, 1);
COMMIT;
SELECT count(*) FROM acc WHERE id = 61;
SELECT '-- two tables of one connection commit as one request';
CREATE VIRTUAL TABLE audit USING tarn(seq INTEGER PRIMARY KEY, what TEXT);
CREATE TEMP TABLE mark(n);
BEGIN;
UPDATE acc SET bal = bal + 5 WHERE id = 3;
INSERT INTO audit VALUES (1, 'credit 3');
INSERT INTO mark SELECT tarn_request_count();
COMMIT;
SELECT tarn_request_count() - n FROM mark;
SELECT (SELECT bal FROM acc WHERE id = 3), (SELECT what FROM audit WHERE seq = 1);
BEGIN;
INSERT INTO audit VALUES (2, 'ok');
INSERT INTO acc VALUES (2, 'dup', 0, 1);
COMMIT;
SELECT count(*) FROM audit;
SELECT '-- RETURNING is not available on virtual tables (SQLite)';
DELETE FROM acc WHERE id = 43 RETURNING id;
