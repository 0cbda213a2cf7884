-- Polymorphic collections, Cachalot's ProductEvent example in SQL.
-- Run from the build directory:  sqlite3 :memory: < ../sql/examples/polymorphic.sql
--
-- In Cachalot an abstract ProductEvent exposes every index the subtypes need (Id, EventType, EventDate,
-- ValueDate); the subtypes add their own fields. In Tarn the collection declares the shared, indexed
-- columns once; event_type is the discriminator (hash-indexed), and each subtype's own fields live in the
-- JSON column `body`, read with json_extract. NULL is a valid indexed value, so an index that only means
-- something for some subtypes (value_date here) is fine.
.load ./tarn
.headers off
.mode list

CREATE VIRTUAL TABLE product_events USING tarn(
  id INTEGER PRIMARY KEY,
  event_type TEXT INDEXED,      -- discriminator: 'IncreaseDecrease', 'FixingEvent', 'Termination'
  deal_id INTEGER INDEXED,
  event_date TEXT ORDERED,
  value_date TEXT ORDERED,      -- NULL for subtypes without a value date
  version INTEGER,
  body JSON,                    -- the subtype's own fields
  compress = lz4);

INSERT INTO product_events VALUES
  (1, 'IncreaseDecrease', 100, '2026-11-20', '2026-11-22', 1,
      json_object('delta', 250000, 'currency', 'EUR', 'counterparty', 'ACME')),
  (2, 'IncreaseDecrease', 101, '2026-11-20', '2026-11-23', 1,
      json_object('delta', -50000, 'currency', 'USD', 'counterparty', 'Globex')),
  (3, 'FixingEvent', 100, '2026-11-20', NULL, 1,
      json_object('index', 'EURIBOR3M', 'rate', 0.0312)),
  (4, 'Termination', 102, '2026-11-21', '2026-11-25', 1,
      json_object('reason', 'matured', 'fee', 120.5)),
  (5, 'IncreaseDecrease', 102, '2026-11-18', '2026-11-19', 1,
      json_object('delta', 10000, 'currency', 'EUR', 'counterparty', 'Initech'));

SELECT '-- increase/decrease events of 2026-11-20 (both indexes used on the server)';
SELECT id, json_extract(body, '$.delta'), json_extract(body, '$.currency')
  FROM product_events
 WHERE event_type = 'IncreaseDecrease' AND event_date = '2026-11-20'
 ORDER BY id;

SELECT '-- every event of deal 100, whatever its type';
SELECT id, event_type,
       CASE event_type
         WHEN 'IncreaseDecrease' THEN 'delta ' || json_extract(body, '$.delta')
         WHEN 'FixingEvent' THEN json_extract(body, '$.index') || ' @ ' || json_extract(body, '$.rate')
         ELSE json_extract(body, '$.reason')
       END
  FROM product_events WHERE deal_id = 100 ORDER BY id;

SELECT '-- the latest events by value date (range + ORDER BY + LIMIT pushed down)';
SELECT id, value_date FROM product_events
 WHERE value_date >= '2026-11-20' ORDER BY value_date DESC LIMIT 2;

SELECT '-- events without a value date (NULL is indexed)';
SELECT id, event_type FROM product_events WHERE value_date IS NULL;

SELECT '-- total delta per currency, from the subtype fields';
SELECT json_extract(body, '$.currency') AS ccy, sum(json_extract(body, '$.delta'))
  FROM product_events WHERE event_type = 'IncreaseDecrease'
 GROUP BY ccy ORDER BY ccy;

SELECT '-- UpdateIf: amend an event only if nobody changed it since version 1';
UPDATE product_events
   SET version = version + 1, body = json_set(body, '$.delta', 300000)
 WHERE id = 1 AND version = 1;
SELECT changes(), version, json_extract(body, '$.delta') FROM product_events WHERE id = 1;
UPDATE product_events SET version = version + 1 WHERE id = 1 AND version = 1;
SELECT changes();

SELECT '-- TryAdd: add an event only if its id is free';
INSERT OR IGNORE INTO product_events VALUES
  (3, 'Termination', 100, '2026-11-30', NULL, 1, json_object('reason', 'dup'));
SELECT changes(), event_type FROM product_events WHERE id = 3;

DROP TABLE product_events;
SELECT tarn_drop_collection('product_events');
