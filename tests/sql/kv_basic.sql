-- tarn_kv through the real sqlite3 shell: every statement of docs/design.md §3's tarn_kv block, and its errors.
.load ./tarn
.headers off
.mode list
CREATE VIRTUAL TABLE kv USING tarn_kv;
SELECT '-- empty store';
SELECT count(*) FROM kv;

SELECT '-- mkdir, create, create again fails with SQLITE_CONSTRAINT';
INSERT INTO kv(key, is_dir) VALUES ('users', 1);
INSERT INTO kv(key, value) VALUES ('users.alice', 'admin');
INSERT INTO kv(key, value) VALUES ('users.alice', 'again');
SELECT key, value, is_dir, ttl_ms IS NULL FROM kv WHERE key = 'users.alice';

SELECT '-- REPLACE is a put; revisions move, create_rev stays';
SELECT create_rev = update_rev FROM kv WHERE key = 'users.alice';
REPLACE INTO kv(key, value) VALUES ('users.alice', 'root');
SELECT value, create_rev < update_rev FROM kv WHERE key = 'users.alice';
SELECT update_rev = (SELECT update_rev FROM kv WHERE key = 'users.alice') FROM kv WHERE key = 'users';
SELECT create_time > 1700000000000, update_time >= create_time FROM kv WHERE key = 'users.alice';

SELECT '-- INSERT OR IGNORE / OR REPLACE on an existing key';
INSERT OR IGNORE INTO kv(key, value) VALUES ('users.alice', 'ignored');
SELECT changes(), value FROM kv WHERE key = 'users.alice';
INSERT OR REPLACE INTO kv(key, value) VALUES ('users.alice', 'replaced');
SELECT value FROM kv WHERE key = 'users.alice';

SELECT '-- batch get: one request for the whole IN list';
INSERT INTO kv(key, value) VALUES ('users.bob', 'dev'), ('users.carol', 'ops');
CREATE TEMP TABLE before(n);
INSERT INTO before SELECT tarn_request_count();
SELECT key, value FROM kv WHERE key IN ('users.carol', 'users.alice', 'nope', 'users.bob') ORDER BY key;
SELECT tarn_request_count() - n FROM before;

SELECT '-- list one directory in key order; the root''s children with parent = ''''';
SELECT key, is_dir FROM kv WHERE parent = 'users' ORDER BY key;
SELECT key FROM kv WHERE parent = '';
SELECT count(*) FROM kv WHERE parent = 'users.alice';
SELECT count(*) FROM kv WHERE parent = 'no.such.dir';
SELECT parent FROM kv WHERE key = 'users.bob';

SELECT '-- compare-and-set';
UPDATE kv SET value = 'lead' WHERE key = 'users.bob' AND value = 'dev';
SELECT changes();
UPDATE kv SET value = 'intern' WHERE key = 'users.bob' AND value = 'dev';
SELECT changes();
SELECT value FROM kv WHERE key = 'users.bob';

SELECT '-- remove: HAS_CHILDREN for a non-empty directory, then children and the dir';
DELETE FROM kv WHERE key = 'users';
DELETE FROM kv WHERE key = 'users.carol';
SELECT changes();
DELETE FROM kv WHERE parent = 'users';
SELECT changes();
DELETE FROM kv WHERE key = 'users';
SELECT count(*) FROM kv;

SELECT '-- key and value rules, with DtKV code names';
INSERT INTO kv(key, value) VALUES ('a..b', 'x');
INSERT INTO kv(key, value) VALUES ('.a', 'x');
INSERT INTO kv(key, value) VALUES ('a.', 'x');
INSERT INTO kv(key, value) VALUES ('missing.child', 'x');
INSERT INTO kv(key, value) VALUES ('empty', '');
INSERT INTO kv(key, value) VALUES ('v', 'x');
INSERT INTO kv(key, value) VALUES ('v.child', 'x');
INSERT INTO kv(key) VALUES ('novalue');
INSERT INTO kv(key, value) VALUES (NULL, 'x');
INSERT INTO kv(key, value, create_rev) VALUES ('ro', 'x', 5);
INSERT INTO kv(key, value) VALUES (printf('%.8193c', 'k'), 'x');
INSERT INTO kv(key, value) VALUES (printf('%.8192c', 'k'), 'x');
SELECT length(key) FROM kv WHERE length(key) > 100;
DELETE FROM kv WHERE length(key) > 100;

SELECT '-- binary values come back as blobs, text as text';
INSERT INTO kv(key, value) VALUES ('bin', x'00ff10');
SELECT typeof(value), hex(value) FROM kv WHERE key = 'bin';
SELECT typeof(value) FROM kv WHERE key = 'v';

SELECT '-- temp node with TTL; update TTL; expiry';
INSERT INTO kv(key, is_dir) VALUES ('locks', 1);
INSERT INTO kv(key, value, ttl_ms) VALUES ('locks.job', 'me', 5000);
SELECT key, value, ttl_ms FROM kv WHERE key = 'locks.job';
UPDATE kv SET ttl_ms = 10000 WHERE key = 'locks.job';
SELECT ttl_ms FROM kv WHERE key = 'locks.job';
REPLACE INTO kv(key, value) VALUES ('locks.job', 'plain');
UPDATE kv SET ttl_ms = 200 WHERE key = 'locks.job';
UPDATE kv SET ttl_ms = 0 WHERE key = 'locks.job';
UPDATE kv SET ttl_ms = 100 WHERE key = 'v';
.shell sleep 0.4
SELECT count(*) FROM kv WHERE key = 'locks.job';

SELECT '-- temp directory: its children go with it';
INSERT INTO kv(key, is_dir, ttl_ms) VALUES ('locks.tmpdir', 1, 250);
INSERT INTO kv(key, value) VALUES ('locks.tmpdir.plain', 'x');
INSERT INTO kv(key, value, ttl_ms) VALUES ('locks.tmpdir.t1', 'x', 60000);
SELECT key, is_dir FROM kv WHERE parent = 'locks.tmpdir';
.shell sleep 0.5
SELECT count(*) FROM kv WHERE key LIKE 'locks.tmpdir%';

SELECT '-- changing what cannot change';
UPDATE kv SET key = 'w' WHERE key = 'v';
UPDATE kv SET is_dir = 1 WHERE key = 'v';
UPDATE kv SET value = NULL WHERE key = 'v';

SELECT '-- scan of everything, and plans';
SELECT key FROM kv ORDER BY key;
EXPLAIN QUERY PLAN SELECT * FROM kv WHERE key = 'v';
EXPLAIN QUERY PLAN SELECT * FROM kv WHERE key IN ('v', 'w');
EXPLAIN QUERY PLAN SELECT * FROM kv WHERE parent = 'locks' ORDER BY key;
EXPLAIN QUERY PLAN SELECT * FROM kv WHERE value = 'x';

SELECT '-- bad arguments';
CREATE VIRTUAL TABLE bad USING tarn_kv(clustr='x');
CREATE VIRTUAL TABLE bad2 USING tarn_kv(cluster='');
SELECT tarn_version() IS NOT NULL;
