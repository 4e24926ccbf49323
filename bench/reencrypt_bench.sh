#!/usr/bin/env bash
# Re-encryption of ROWS rows of SIZE bytes in SQLite, in one run:
#   reference: the job's own reads and compare-and-swap UPDATEs with no
#              crypto (bench/reencrypt_fixture plain-update), on a copy;
#   rewrap:    keyward reencrypt --mode rewrap after a rotation;
#   full:      keyward reencrypt --mode full after another rotation.
# Same batch size for all (500).  The rows are written by the SDK's
# Encryptor, a data key serving up to MESSAGES_PER_KEY messages (environment,
# default 1000; 1 gives every row its own data key, the worst case for
# keywardd).  Writes build/bench/reencrypt_bench.json.
#   [MESSAGES_PER_KEY=N] bench/reencrypt_bench.sh [ROWS] [SIZE] [BUILD_DIR]
set -euo pipefail
rows=${1:-1000000}
size=${2:-1024}
build=${3:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
bench_scratch
dev_setup
start_keywardd
kw() { "$build/bin/keyward" --config "$work/dev/admin.yaml" "$@"; }
kw key create bench/rows >/dev/null
echo "== generating $rows rows of $size bytes, a data key per ${MESSAGES_PER_KEY:-1000} messages =="
"$build/bench/reencrypt_fixture" generate "$work/dev/app.yaml" "$work/app.db" "$rows" "$size" bench/rows \
  "${MESSAGES_PER_KEY:-1000}"
ls -la "$work/app.db" | awk '{print "database:", $5, "bytes"}'
cp "$work/app.db" "$work/ref.db"
[ -f "$work/app.db-wal" ] && cp "$work/app.db-wal" "$work/ref.db-wal"
echo "== reference: plain compare-and-swap UPDATE of every row =="
ref=$("$build/bench/reencrypt_fixture" plain-update "$work/ref.db" 500)
echo "$ref"
rm -f "$work"/ref.db*
kw key rotate bench/rows >/dev/null
echo "== keyward reencrypt --mode rewrap =="
rewrap=$(kw reencrypt --db "sqlite:$work/app.db" --table items --column secret --batch 500 --json)
echo "$rewrap"
kw key rotate bench/rows >/dev/null
echo "== keyward reencrypt --mode full =="
full=$(kw reencrypt --db "sqlite:$work/app.db" --table items --column secret --mode full --batch 500 --json)
echo "$full"
python3 - "$ref" "$rewrap" "$full" <<'PY'
import json, os, sys
ref, rewrap, full = (json.loads(a) for a in sys.argv[1:])
r = ref["rows_per_second"]
out = {"messages_per_key": int(os.environ.get("MESSAGES_PER_KEY", "1000")),
       "reference_rows_per_second": r,
       "rewrap": {"rows_per_second": rewrap["rows_per_second"], "ratio": rewrap["rows_per_second"] / r,
                  "seconds": rewrap["seconds"], "changed": rewrap["changed"], "failed": rewrap["failed"]},
       "full": {"rows_per_second": full["rows_per_second"], "ratio": full["rows_per_second"] / r,
                "seconds": full["seconds"], "changed": full["changed"], "failed": full["failed"]}}
print(f"\nplain UPDATE {r:.0f} rows/s | rewrap {out['rewrap']['rows_per_second']:.0f} rows/s "
      f"({out['rewrap']['ratio']:.2f}x) | full {out['full']['rows_per_second']:.0f} rows/s "
      f"({out['full']['ratio']:.2f}x)")
json.dump(out, open("build/bench/reencrypt_bench.json", "w"), indent=2)
PY
