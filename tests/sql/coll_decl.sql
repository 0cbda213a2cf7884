-- tarn collection tables: declarations, their errors, attaching, DROP TABLE and tarn_drop_collection.
.load ./tarn
.headers off
.mode list
SELECT '-- bad declarations name the argument';
CREATE VIRTUAL TABLE b1 USING tarn(id INTEGER PRIMARY KEY, x FOO);
CREATE VIRTUAL TABLE b2 USING tarn(id INTEGER PRIMARY KEY, x TEXT UNIQUE);
CREATE VIRTUAL TABLE b3 USING tarn(id INTEGER, x TEXT);
CREATE VIRTUAL TABLE b4 USING tarn(id INTEGER PRIMARY KEY, k TEXT PRIMARY KEY);
CREATE VIRTUAL TABLE b5 USING tarn(id REAL PRIMARY KEY);
CREATE VIRTUAL TABLE b6 USING tarn(id INTEGER PRIMARY KEY, body JSON INDEXED);
CREATE VIRTUAL TABLE b7 USING tarn(id INTEGER PRIMARY KEY, compress=zstd);
CREATE VIRTUAL TABLE b8 USING tarn(id INTEGER PRIMARY KEY, colour='red');
CREATE VIRTUAL TABLE b9 USING tarn(id INTEGER PRIMARY KEY, ID TEXT);
CREATE VIRTUAL TABLE b10 USING tarn(id INTEGER PRIMARY KEY, x);
CREATE VIRTUAL TABLE b11 USING tarn;
CREATE VIRTUAL TABLE b12 USING tarn(id INTEGER PRIMARY KEY, "a b" TEXT);
CREATE VIRTUAL TABLE b13 USING tarn(id INTEGER PRIMARY KEY, cluster='tcp://127.0.0.1:1');
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'b%';

SELECT '-- a declaration, as SQLite sees it';
CREATE VIRTUAL TABLE events USING tarn(id INTEGER PRIMARY KEY, event_type TEXT INDEXED,
  event_date TEXT ORDERED, value_date TEXT ORDERED, version INTEGER, amount REAL, raw BLOB, body JSON,
  compress=lz4);
SELECT name, type, pk FROM pragma_table_info('events') ORDER BY cid;
INSERT INTO events VALUES (1, 'Open', '2026-01-02', '2026-01-03', 1, 10, x'00ff', '{"a":1}');
SELECT id, typeof(amount), amount, hex(raw), json_extract(body, '$.a') FROM events;

SELECT '-- a second table attaches to the same collection when the schema is identical';
CREATE VIRTUAL TABLE ev2 USING tarn(id INTEGER PRIMARY KEY, event_type TEXT INDEXED,
  event_date TEXT ORDERED, value_date TEXT ORDERED, version INTEGER, amount REAL, raw BLOB, body JSON,
  compress=lz4, collection='events');
SELECT id, event_type FROM ev2;
SELECT '-- a different schema is refused with the difference named';
CREATE VIRTUAL TABLE ev3 USING tarn(id INTEGER PRIMARY KEY, event_type TEXT ORDERED,
  event_date TEXT ORDERED, value_date TEXT ORDERED, version INTEGER, amount REAL, raw BLOB, body JSON,
  compress=lz4, collection='events');
CREATE VIRTUAL TABLE ev4 USING tarn(id INTEGER PRIMARY KEY, collection='events');

SELECT '-- DROP TABLE only detaches: the data stays';
DROP TABLE ev2;
CREATE VIRTUAL TABLE ev2 USING tarn(id INTEGER PRIMARY KEY, event_type TEXT INDEXED,
  event_date TEXT ORDERED, value_date TEXT ORDERED, version INTEGER, amount REAL, raw BLOB, body JSON,
  compress=lz4, collection='events');
SELECT count(*) FROM ev2;

SELECT '-- tarn_drop_collection deletes it (drop the tables first: a declared table re-creates it)';
DROP TABLE events;
DROP TABLE ev2;
SELECT tarn_drop_collection('events');
SELECT tarn_drop_collection('events');
SELECT tarn_drop_collection('events', 'other_engine');
SELECT tarn_drop_collection('');
SELECT '-- re-declared with another schema now that it is gone';
CREATE VIRTUAL TABLE events USING tarn(id TEXT PRIMARY KEY, n INTEGER ORDERED);
INSERT INTO events VALUES ('a', 1);
SELECT * FROM events;

SELECT '-- the module is DIRECTONLY: not usable from a view or trigger';
CREATE VIEW v AS SELECT * FROM events;
SELECT * FROM v;
