-- tarn collection tables: what xBestIndex pushes down, asserted through EXPLAIN QUERY PLAN, results and
-- tarn_request_count() deltas.
.load ./tarn
.headers off
.mode list
CREATE VIRTUAL TABLE t USING tarn(id INTEGER PRIMARY KEY, kind TEXT INDEXED, day TEXT ORDERED, n INTEGER ORDERED,
  note TEXT, body JSON);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 200)
INSERT INTO t SELECT i, 'k' || (i % 5), printf('2026-%02d-%02d', 1 + i % 12, 1 + i % 28),
  CASE WHEN i % 10 = 0 THEN NULL ELSE i % 37 END, 'note ' || i, json_object('i', i) FROM s;
CREATE TEMP TABLE mark(n);
INSERT INTO mark VALUES (0);

SELECT '-- pk equality: unique, one request';
EXPLAIN QUERY PLAN SELECT note FROM t WHERE id = 7;
SELECT note FROM t WHERE id = '7';
UPDATE mark SET n = tarn_request_count();
SELECT note FROM t WHERE id = 8;
SELECT tarn_request_count() - n FROM mark;

SELECT '-- IN on the pk: the whole list in ONE request';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE id IN (3, 1, 2);
UPDATE mark SET n = tarn_request_count();
SELECT id FROM t WHERE id IN (1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 999, NULL) ORDER BY id;
SELECT tarn_request_count() - n FROM mark;

SELECT '-- hash index equality and IN';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE kind = 'k1';
SELECT count(*) FROM t WHERE kind = 'k1';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE kind IN ('k1', 'k2') AND day = '2026-02-02';
SELECT id FROM t WHERE kind IN ('k1', 'k2') AND day = '2026-02-02' ORDER BY id;

SELECT '-- ranges on an ORDERED column, ORDER BY consumed, LIMIT pushed';
EXPLAIN QUERY PLAN SELECT id, day FROM t WHERE day >= '2026-11-01' ORDER BY day DESC LIMIT 3;
SELECT id, day FROM t WHERE day >= '2026-11-01' ORDER BY day DESC LIMIT 3;
EXPLAIN QUERY PLAN SELECT id FROM t WHERE n BETWEEN 5 AND 6 ORDER BY n, id;
SELECT id FROM t WHERE n BETWEEN 5 AND 6 ORDER BY n, id;
SELECT id, n FROM t WHERE n > '35' ORDER BY n DESC, id DESC LIMIT 2 OFFSET 1;

SELECT '-- LIMIT is not pushed when a WHERE term stays with SQLite; the answer stays right';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE day >= '2026-11-01' AND note LIKE '%1' ORDER BY day LIMIT 2;
SELECT id FROM t WHERE day >= '2026-11-01' AND note LIKE '%1' ORDER BY day, id LIMIT 2;
EXPLAIN QUERY PLAN SELECT id FROM t WHERE day >= '2026-11-01' ORDER BY note LIMIT 2;
SELECT id FROM t WHERE day >= '2026-11-01' ORDER BY note LIMIT 2;

SELECT '-- a plain column is a scan; ORDER BY a plain column is sorted by SQLite';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE note = 'note 5';
SELECT id FROM t WHERE note = 'note 5';
EXPLAIN QUERY PLAN SELECT id FROM t ORDER BY id DESC LIMIT 1;
SELECT id FROM t ORDER BY id DESC LIMIT 1;

SELECT '-- LIKE/GLOB prefixes are pushed and re-checked; other patterns are not pushed';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE day LIKE '2026-03-0%';
SELECT count(*) FROM t WHERE day LIKE '2026-03-0%';
SELECT count(*) FROM t WHERE day LIKE '2026-03-0_';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE day LIKE '%-03';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE day GLOB '2026-1[01]*';
SELECT count(*) FROM t WHERE day GLOB '2026-1[01]*';

SELECT '-- NULL in an indexed column';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE n IS NULL;
SELECT count(*) FROM t WHERE n IS NULL;
SELECT count(*) FROM t WHERE n IS NOT NULL;
SELECT count(*) FROM t WHERE n = NULL;
SELECT id FROM t WHERE n IS NULL ORDER BY n, id LIMIT 2;

SELECT '-- non-BINARY collation is left to SQLite';
EXPLAIN QUERY PLAN SELECT id FROM t WHERE kind = 'K1' COLLATE NOCASE;
SELECT count(*) FROM t WHERE kind = 'K1' COLLATE NOCASE;

SELECT '-- JSON column, read with json_extract';
SELECT json_extract(body, '$.i') FROM t WHERE id = 42;

SELECT '-- join with a native table, both orders';
CREATE TABLE native(x INTEGER PRIMARY KEY, label TEXT);
INSERT INTO native VALUES (4, 'four'), (40, 'forty'), (400, 'none');
SELECT native.label, t.note FROM native JOIN t ON t.id = native.x ORDER BY native.x;
SELECT native.label, t.id FROM t JOIN native ON native.x = t.id WHERE t.kind = 'k0' ORDER BY t.id;
