-- Transactions (docs/transactions.md): buffered writes of tarn and tarn_kv tables, read-your-writes,
-- savepoints, statement rollback, ROLLBACK, one request per commit.
.load ./tarn
.headers off
CREATE VIRTUAL TABLE kv USING tarn_kv(engine='sqltxn');
CREATE VIRTUAL TABLE acc USING tarn(id INTEGER PRIMARY KEY, owner TEXT INDEXED, bal INTEGER, tag TEXT ORDERED, engine='sqltxn');
INSERT INTO kv(key, is_dir) VALUES ('cfg', 1);
INSERT INTO acc VALUES (1, 'ann', 100, 'a'), (2, 'bob', 50, 'b'), (3, 'cat', 10, 'c');

SELECT '-- read-your-writes: pk, index, range + ORDER BY + LIMIT, directory list';
BEGIN;
INSERT INTO acc VALUES (4, 'ann', 7, 'ab');
UPDATE acc SET bal = bal - 30 WHERE id = 1;
UPDATE acc SET bal = bal + 30 WHERE id = 2;
DELETE FROM acc WHERE id = 3;
INSERT INTO kv(key, value) VALUES ('cfg.mode', 'fast'), ('cfg.level', '3');
SELECT id, bal FROM acc WHERE id IN (1, 2, 3, 4) ORDER BY id;
SELECT id FROM acc WHERE owner = 'ann' ORDER BY id;
SELECT id, tag FROM acc WHERE tag >= 'ab' ORDER BY tag DESC LIMIT 2;
SELECT key, value FROM kv WHERE parent = 'cfg' ORDER BY key;
SELECT sum(bal) FROM acc;
COMMIT;
SELECT id, bal FROM acc ORDER BY id;

SELECT '-- ROLLBACK leaves the store unchanged';
BEGIN;
DELETE FROM acc;
DELETE FROM kv WHERE key = 'cfg.mode';
SELECT count(*) FROM acc;
ROLLBACK;
SELECT count(*) FROM acc;
SELECT value FROM kv WHERE key = 'cfg.mode';

SELECT '-- savepoints';
BEGIN;
UPDATE kv SET value = '4' WHERE key = 'cfg.level';
SAVEPOINT s1;
UPDATE kv SET value = '5' WHERE key = 'cfg.level';
INSERT INTO acc VALUES (9, 'zed', 1, 'z');
SELECT value FROM kv WHERE key = 'cfg.level';
ROLLBACK TO s1;
SELECT value FROM kv WHERE key = 'cfg.level';
SELECT count(*) FROM acc WHERE id = 9;
RELEASE s1;
COMMIT;
SELECT value FROM kv WHERE key = 'cfg.level';

SELECT '-- a failed multi-row statement is rolled back alone';
BEGIN;
INSERT INTO acc VALUES (5, 'eve', 5, 'e');
INSERT INTO acc VALUES (6, 'fay', 6, 'f'), (NULL, 'bad', 0, 'x');
SELECT id FROM acc WHERE id >= 5 ORDER BY id;
COMMIT;
SELECT id FROM acc WHERE id >= 5 ORDER BY id;

SELECT '-- requests: one read for the UPDATE, one commit for both tables';
CREATE TEMP TABLE n0 AS SELECT tarn_request_count() AS c;
BEGIN;
UPDATE acc SET bal = bal + 1 WHERE id = 5;
INSERT INTO kv(key, value) VALUES ('cfg.x', 'y');
COMMIT;
SELECT tarn_request_count() - c FROM n0;

SELECT '-- an error at commit names the row, and nothing of the transaction is applied';
BEGIN;
INSERT INTO kv(key, value) VALUES ('cfg.y', 'y');
INSERT INTO acc VALUES (1, 'dup', 0, 'd');
COMMIT;
SELECT count(*) FROM kv WHERE key = 'cfg.y';
