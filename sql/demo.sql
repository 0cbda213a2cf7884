-- Tarn demo: the tarn_kv table. With TARN_CLUSTER unset it runs on the embedded engine (a store inside this
-- sqlite3 process); shell/demo.sh runs the very same script against a 3-node raftnet cluster by presetting
-- TARN_CLUSTER. Run from the build directory (it loads ./tarn); every statement is echoed before it runs.
.load ./tarn
.headers on
.mode box
SELECT tarn_version() AS version;

-- One table over the whole tree; no cluster= given, so the connection's default: TARN_CLUSTER or embedded.
CREATE VIRTUAL TABLE kv USING tarn_kv;

-- mkdir, then create two values under it
INSERT INTO kv(key, is_dir) VALUES ('users', 1);
INSERT INTO kv(key, value) VALUES ('users.alice', 'admin');
INSERT INTO kv(key, value) VALUES ('users.bob', 'dev');

-- INSERT of an existing key fails, as SQL does
INSERT INTO kv(key, value) VALUES ('users.alice', 'again');

-- REPLACE is a put: create or overwrite
REPLACE INTO kv(key, value) VALUES ('users.alice', 'root');

-- get, with the revision that last changed it
SELECT key, value, update_rev FROM kv WHERE key = 'users.alice';

-- batch get in one round trip
SELECT key, value FROM kv WHERE key IN ('users.alice', 'users.bob', 'users.nobody') ORDER BY key;

-- list one directory
SELECT key, is_dir FROM kv WHERE parent = 'users' ORDER BY key;

-- compare-and-set: applies only while the value is still 'dev'
UPDATE kv SET value = 'lead' WHERE key = 'users.bob' AND value = 'dev';
SELECT changes() AS swapped;
UPDATE kv SET value = 'intern' WHERE key = 'users.bob' AND value = 'dev';
SELECT changes() AS swapped;
SELECT key, value FROM kv WHERE key = 'users.bob';

-- a directory with children cannot be removed
DELETE FROM kv WHERE key = 'users';

-- a temp node owned by this connection, gone 300 ms after its TTL is set
INSERT INTO kv(key, is_dir) VALUES ('locks', 1);
INSERT INTO kv(key, value, ttl_ms) VALUES ('locks.job', 'me', 300);
SELECT key, value, ttl_ms FROM kv WHERE parent = 'locks';
UPDATE kv SET ttl_ms = 400 WHERE key = 'locks.job';
SELECT key, ttl_ms FROM kv WHERE key = 'locks.job';
.shell sleep 0.6
SELECT count(*) AS locks_left FROM kv WHERE parent = 'locks';

-- remove
DELETE FROM kv WHERE key = 'users.bob';
SELECT key FROM kv ORDER BY key;
