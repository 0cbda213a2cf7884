#!/usr/bin/env bash
# shell/demo.sh — Tarn on a real 3-node cluster, narrated: start it, run sql/demo.sql through the sqlite3
# shell against it, kill the leader with SIGKILL, watch a new leader take over with every acknowledged key
# still readable, restart the killed node and watch it catch up, stop the cluster.
# Builds nothing: run after the build (shell/dev demo does). Usage: shell/demo.sh [BUILD_DIR] (default build/).
# Everything runs on loopback in a temporary directory, removed on any exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-${TARN_BUILD_DIR:-$here/build}}" && pwd)
tarn="$build/tarn"
for f in "$tarn" "$build/raftnet" "$build/tarn.so"; do
  [ -x "$f" ] || { echo "demo: $f is missing: build first (shell/dev demo)" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || { echo "demo: the sqlite3 shell is missing (apt-get install sqlite3)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/tarn-demo.XXXXXX")
urls=""
cleanup() {
  local rc=$?
  if [ -f "$dir/cluster.conf" ]; then "$tarn" cluster stop --dir "$dir" --timeout-ms 3000 >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
# Runs SQL (its first argument) against the cluster from the build directory (demo.sql loads ./tarn);
# further arguments go to sqlite3.
sql() {
  local text=$1; shift
  (cd "$build" && TARN_CLUSTER="$urls" sqlite3 -batch "$@" :memory: <<<"$text")
}
leader_id() { sql ".load ./tarn
SELECT id FROM tarn_status WHERE leader = 1;" -noheader -list 2>/dev/null || true; }
conf_pid() { awk -v id="$1" '$1 == "node" && $2 == id { print $3 }' "$dir/cluster.conf"; }

say "starting a 3-node cluster in $dir (tarn cluster start --nodes 3)"
urls=$("$tarn" cluster start --nodes 3 --dir "$dir")
echo "members: $urls"
"$tarn" status --dir "$dir"

say "sql/demo.sql through the sqlite3 shell, TARN_CLUSTER=$urls"
# demo.sql shows two failing statements on purpose, which makes sqlite3 exit non-zero.
(cd "$build" && TARN_CLUSTER="$urls" sqlite3 -echo :memory: < "$here/sql/demo.sql") ||
  echo "(sqlite3 exits non-zero: the two errors above are part of the demo)"

n=100
say "writing $n keys (demo.k001 … demo.k$n); each returns once a majority has it on disk"
script=".load ./tarn
CREATE VIRTUAL TABLE kv USING tarn_kv;
INSERT INTO kv(key, is_dir) VALUES ('demo', 1);"
for i in $(seq -w 1 $n); do script+=$'\n'"REPLACE INTO kv(key, value) VALUES ('demo.k$i', 'value-$i');"; done
script+=$'\n'"SELECT count(*) AS acknowledged FROM kv WHERE parent = 'demo';"
sql "$script" -bail -header

old=$(leader_id)
[ -n "$old" ] || { echo "demo: no leader" >&2; exit 1; }
pid=$(conf_pid "$old")
say "killing the leader, node $old (pid $pid), with SIGKILL"
kill -9 "$pid"

say "waiting for a new leader"
new=""
for _ in $(seq 1 100); do
  new=$(leader_id)
  if [ -n "$new" ] && [ "$new" != "$old" ]; then break; fi
  new=""
  sleep 0.1
done
[ -n "$new" ] || { echo "demo: no new leader within 10 s" >&2; exit 1; }
echo "node $new leads now"
"$tarn" status --dir "$dir" --timeout-ms 300 || true

say "reading every acknowledged key back through the new leader"
got=$(sql ".load ./tarn
CREATE VIRTUAL TABLE kv USING tarn_kv;
SELECT count(*) FROM kv WHERE parent = 'demo' AND value = 'value-' || substr(key, 7);" -noheader -list)
echo "$got of $n keys read back with their values"
[ "$got" = "$n" ] || { echo "demo: lost acknowledged writes!" >&2; exit 1; }

say "one more write while node $old is down"
sql ".load ./tarn
CREATE VIRTUAL TABLE kv USING tarn_kv;
REPLACE INTO kv(key, value) VALUES ('demo.while_down', 'written with 2 of 3 nodes');" -bail

say "restarting node $old (tarn cluster restart $old)"
"$tarn" cluster restart "$old" --dir "$dir" >/dev/null
caught=""
for _ in $(seq 1 100); do
  caught=$(sql ".load ./tarn
SELECT 1 FROM tarn_status AS m, tarn_status AS l
 WHERE m.id = $old AND l.leader = 1 AND m.applied_index >= l.commit_index AND m.role <> 'unreachable';" \
    -noheader -list 2>/dev/null || true)
  [ "$caught" = 1 ] && break
  sleep 0.1
done
[ "$caught" = 1 ] || { echo "demo: node $old did not catch up within 10 s" >&2; "$tarn" status --dir "$dir" || true; exit 1; }
echo "node $old has applied everything the leader committed:"
"$tarn" status --dir "$dir"

say "stopping the cluster (SIGTERM)"
"$tarn" cluster stop --dir "$dir"
say "demo finished"
