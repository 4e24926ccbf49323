#!/usr/bin/env bash
# Field-level encryption, each figure against a reference measured in the
# same run (docs/benchmarks.md, "Field-level encryption"):
#   1. one 64-byte field, cached data key, vs raw EVP AES-256-GCM (one core);
#   2. encrypt-table on ROWS SQLite rows vs a plain UPDATE of the same columns;
#   3. the same on PostgreSQL (a throwaway server);
#   4. reading READ_ROWS rows through FieldEncryptor vs in plaintext.
# Writes build/bench/fields_bench.json.
#   bench/fields_bench.sh [ROWS (1000000)] [READ_ROWS (100000)] [BUILD_DIR]
set -euo pipefail
rows=${1:-1000000}
read_rows=${2:-100000}
build=${3:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
bench_scratch
dev_setup
start_keywardd
schema=examples/fields/customers.yaml
"$build/bin/keyward" --config "$work/dev/admin.yaml" key create customers >/dev/null
fb="$build/bench/fields_bench"
echo "== 1. one 64-byte field (taskset -c 0) =="
taskset -c 0 "$fb" micro "$work/dev/app.yaml" "$schema" "$work" \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_format=json >"$work/micro.json"
echo "== 2. encrypt-table, SQLite, $rows rows =="
sqlite=$("$fb" table "$work/dev/app.yaml" "$work/dev/admin.yaml" "$schema" "$build/bin/keyward" \
  sqlite "$rows" "$work")
echo "$sqlite"
echo "== 3. encrypt-table, PostgreSQL, $rows rows =="
mkdir -p "$work/pg"
postgres=$("$fb" table "$work/dev/app.yaml" "$work/dev/admin.yaml" "$schema" "$build/bin/keyward" \
  postgres "$rows" "$work/pg")
echo "$postgres"
echo "== 4. reading $read_rows rows, SQLite and PostgreSQL =="
read=$("$fb" read "$work/dev/app.yaml" "$schema" "$read_rows" "$work" sqlite)
echo "$read"
mkdir -p "$work/pgread"
read_pg=$("$fb" read "$work/dev/app.yaml" "$schema" "$read_rows" "$work/pgread" postgres)
echo "$read_pg"
python3 - "$work/micro.json" "$sqlite" "$postgres" "$read" "$read_pg" <<'PY'
import json, sys
micro = json.load(open(sys.argv[1]))
med = {b["run_name"]: b["real_time"] for b in micro["benchmarks"] if b.get("aggregate_name") == "median"}
enc = med["BM_RawEvpAes256GcmEncrypt/64"] / med["BM_FieldEncrypt/64"]
dec = med["BM_RawEvpAes256GcmDecrypt/64"] / med["BM_FieldDecrypt/64"]
sqlite, postgres, read, read_pg = (json.loads(a) for a in sys.argv[2:])
out = {"micro_ns": med, "encrypt_64_ratio": enc, "decrypt_64_ratio": dec,
       "encrypt_table_sqlite": sqlite, "encrypt_table_postgres": postgres, "read_sqlite": read,
       "read_postgres": read_pg}
print(f"\n64-byte field: encrypt {med['BM_FieldEncrypt/64']:.0f} ns vs raw {med['BM_RawEvpAes256GcmEncrypt/64']:.0f} ns ({enc:.2f}x, target 0.5x); "
      f"decrypt {med['BM_FieldDecrypt/64']:.0f} ns vs raw {med['BM_RawEvpAes256GcmDecrypt/64']:.0f} ns ({dec:.2f}x)")
print(f"encrypt-table SQLite: {sqlite['encrypt_table_rows_per_second']:.0f} rows/s vs plain UPDATE {sqlite['reference_plain_update_rows_per_second']:.0f} ({sqlite['ratio']:.2f}x, target 0.5x)")
print(f"encrypt-table PostgreSQL: {postgres['encrypt_table_rows_per_second']:.0f} rows/s vs plain UPDATE {postgres['reference_plain_update_rows_per_second']:.0f} ({postgres['ratio']:.2f}x, target 0.4x)")
for r in (read, read_pg):
    print(f"read ({r['backend']}): {r['field_encryptor_rows_per_second']:.0f} rows/s vs plaintext {r['plaintext_rows_per_second']:.0f} ({r['ratio']:.2f}x, target 0.5x)")
json.dump(out, open("build/bench/fields_bench.json", "w"), indent=2)
PY
