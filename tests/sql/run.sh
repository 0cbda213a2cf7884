#!/usr/bin/env bash
# Runs one SQL script through the real sqlite3 shell with Tarn loaded and compares its output (stdout and
# stderr, in order) with the expected file: tests/sql/run.sh FILE.sql [FILE.expected]
# Needs TARN_BUILD_DIR (set by ctest). Lines of the expected file may use "<any>" to match any text on that
# line (timestamps); everything else must match exactly.
set -euo pipefail
sql=$1
expected=${2:-${sql%.sql}.expected}
build=${TARN_BUILD_DIR:?TARN_BUILD_DIR not set}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$build"
# -bail is not used: scripts check that errors are reported and execution goes on.
# TARN_PRELOAD (sanitizer builds): the ASan runtime, loaded into sqlite3 only.
env ${TARN_PRELOAD:+LD_PRELOAD=$TARN_PRELOAD} sqlite3 :memory: < "$sql" > "$out" 2>&1 || true
/usr/bin/python3 - "$expected" "$out" <<'PY'
import re, sys
exp = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
got = open(sys.argv[2], encoding="utf-8", errors="replace").read().splitlines()
def match(e, g):
    if "<any>" not in e:
        return e == g
    pattern = "^" + ".*".join(re.escape(part) for part in e.split("<any>")) + "$"
    return re.match(pattern, g) is not None
bad = len(exp) != len(got) or any(not match(e, g) for e, g in zip(exp, got))
if bad:
    import difflib
    sys.stdout.writelines(l + "\n" for l in difflib.unified_diff(exp, got, "expected", "got", lineterm=""))
    print(f"FAIL: {sys.argv[1]}: output differs ({len(got)} lines, expected {len(exp)})")
    sys.exit(1)
print(f"ok: {len(got)} lines match")
PY
