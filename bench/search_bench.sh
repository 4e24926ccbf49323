#!/usr/bin/env bash
# Searchable encrypted fields (issue 13), each figure against a reference
# measured in the same run (docs/benchmarks.md, "Searchable fields"):
#   1. lookups by a blind index in a ROWS-row table (decrypted, false
#      positives dropped) vs the same lookups on an indexed plaintext
#      column, SQLite and PostgreSQL;
#   2. one blind index value vs a raw HMAC-SHA-256 (blind_index_bench);
#   3. building one blind index over ROWS rows (scan rate and whole run)
#      vs a plain UPDATE of the same rows in the same batches of 500,
#      SQLite and PostgreSQL.
# Writes build/bench/search_bench.json.
#   bench/search_bench.sh [ROWS (1000000)] [BUILD_DIR] [PG_ROWS (= ROWS)] [LOOKUPS (20000)]
set -euo pipefail
rows=${1:-1000000}
build=${2:-build/release}
pg_rows=${3:-$rows}
lookups=${4:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
bench_scratch
dev_setup
start_keywardd
"$build/bin/keyward" --config "$work/dev/admin.yaml" key create people >/dev/null
sb="$build/bench/search_bench"
echo "== 1+3. blind index build and lookups, SQLite, $rows rows =="
sqlite=$("$sb" run "$work/dev/app.yaml" sqlite "$rows" "$lookups" "$work")
echo "$sqlite"
echo "== 1+3. blind index build and lookups, PostgreSQL, $pg_rows rows =="
mkdir -p "$work/pg"
postgres=$("$sb" run "$work/dev/app.yaml" postgres "$pg_rows" "$lookups" "$work/pg")
echo "$postgres"
echo "== 2. one blind index value vs raw HMAC-SHA-256 (taskset -c 0) =="
taskset -c 0 "$build/bench/blind_index_bench" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_format=json >"$work/hmac.json"
python3 - "$work/hmac.json" "$sqlite" "$postgres" <<'PY'
import json, sys
# blind_index_bench prints its ratio as a last line after the JSON.
micro = json.JSONDecoder().raw_decode(open(sys.argv[1]).read())[0]
med = {b["run_name"]: b["cpu_time"] for b in micro["benchmarks"] if b.get("aggregate_name") == "median"}
hmac = med["BM_RawHmacSha256"] / med["BM_BlindIndexValue"]
runs = [json.loads(a) for a in sys.argv[2:]]
out = {"blind_index_value_cpu_ns": med["BM_BlindIndexValue"], "raw_hmac_cpu_ns": med["BM_RawHmacSha256"],
       "blind_index_value_ratio": hmac, "runs": runs}
print()
for r in runs:
    print(f"lookup ({r['backend']}, {r['rows']} rows, {r['index_bits']} bits, "
          f"{r['candidates_per_lookup']:.2f} candidates/lookup): "
          f"{r['blind_index_lookups_per_second']:.0f}/s vs plaintext {r['reference_plaintext_lookups_per_second']:.0f}/s "
          f"({r['lookup_ratio']:.2f}x, target 0.5x)")
    m = r.get("sqlite_mmap_lookups")
    if m:
        print(f"  the same with PRAGMA mmap_size = 1 GiB on the connection: "
              f"{m['blind_index_lookups_per_second']:.0f}/s vs {m['reference_plaintext_lookups_per_second']:.0f}/s "
              f"({m['lookup_ratio']:.2f}x)")
print(f"blind index value: {med['BM_BlindIndexValue']:.0f} CPU ns vs raw HMAC-SHA-256 {med['BM_RawHmacSha256']:.0f} CPU ns "
      f"({hmac:.2f}x, target 0.5x)")
for r in runs:
    print(f"index build ({r['backend']}, {r['rows']} rows): scan {r['rebuild_scan_rows_per_second']:.0f} rows/s, "
          f"whole run {r['rebuild_whole_run_rows_per_second']:.0f} rows/s ({r['rebuild_whole_run_seconds']:.1f} s) "
          f"vs plain UPDATE {r['reference_plain_update_rows_per_second']:.0f} rows/s "
          f"(scan {r['rebuild_scan_ratio']:.2f}x, target 0.5x; whole run {r['rebuild_whole_run_ratio']:.2f}x); "
          f"{r['rebuild_scan_rows_per_second'] / 8:.0f}x (scan) and {r['rebuild_whole_run_rows_per_second'] / 8:.0f}x "
          f"(whole run) CipherSweet's ~8 rows/s")
json.dump(out, open("build/bench/search_bench.json", "w"), indent=2)
PY
