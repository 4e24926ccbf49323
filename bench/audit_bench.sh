#!/usr/bin/env bash
# The cost of the durable audit log, measured in one run:
#  1. DecryptDataKey ops/s through keywardd with the audit log on disk
#     (group commit, fdatasync) against the same keywardd with its audit
#     sink in memory (audit.in_memory, accepted only for "bench*"
#     environments), alternating twice to even out a noisy machine;
#  2. `keyward audit verify` on a log of RECORDS records, against
#     `openssl dgst -sha256` over the same file (raw hashing speed);
#  3. the log's size per million records.
# Writes build/bench/audit_bench.json.
#   bench/audit_bench.sh [SECONDS] [RECORDS] [BUILD_DIR]
set -euo pipefail
seconds=${1:-3}
records=${2:-1000000}
build=${3:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
bench_scratch
dev_setup
sed -i 's/^environment: dev$/environment: bench-audit/' "$work"/dev/{keywardd,admin,app}.yaml
durable="$work/dev/keywardd.yaml"
memory="$work/dev/keywardd-memory.yaml"
sed 's|^  dir: .*|  in_memory: true|' "$durable" >"$memory"

start() { start_keywardd "$1"; }
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

echo "== DecryptDataKey: durable audit log vs in-memory sink (${seconds}s per point) =="
for round in 1 2; do
  for mode in durable memory; do
    cfg=$durable; [ "$mode" = memory ] && cfg=$memory
    start "$cfg"
    echo "-- $mode, round $round"
    "$build/bench/kms_load" --config "$work/dev/app.yaml" --admin "$work/dev/admin.yaml" \
      --seconds "$seconds" --server-pid "$pid" --only DecryptDataKey \
      --concurrency 1,16,64 --json-out "$work/$mode-$round.json"
    stop
  done
done

echo "== keyward audit verify on $records records =="
"$build/bench/audit_log_gen" "$work/log" "$records"
verify_json=$("$build/bin/keyward" audit verify --log "$work/log" --json)
echo "$verify_json"
bytes=$(stat -c %s "$work/log/records.log")
cp_bytes=$(stat -c %s "$work/log/checkpoints.log")
t0=$(date +%s.%N)
openssl dgst -sha256 "$work/log/records.log" >/dev/null
t1=$(date +%s.%N)

python3 - "$work" "$verify_json" "$bytes" "$cp_bytes" "$t0" "$t1" "$records" <<'PY'
import json, sys, statistics
work, verify_json, size, cp_size, t0, t1, records = sys.argv[1:]
size, cp_size, records = int(size), int(cp_size), int(records)
def load(mode):
    out = {}
    for r in (1, 2):
        for row in json.load(open(f"{work}/{mode}-{r}.json")):
            if row.get("op") == "DecryptDataKey":
                out.setdefault(row["concurrency"], []).append(row)
    return out
durable, memory = load("durable"), load("memory")
result = {"decrypt_data_key": [], "verify": {}, "size": {}}
print()
print(f"{'concurrency':>11} {'durable ops/s':>14} {'memory ops/s':>13} {'ratio':>6} {'durable p99 ms':>15} {'memory p99 ms':>14}")
for c in sorted(durable):
    d = statistics.median(r["ops_per_s"] for r in durable[c])
    m = statistics.median(r["ops_per_s"] for r in memory[c])
    dp = statistics.median(r["p99_ms"] for r in durable[c])
    mp = statistics.median(r["p99_ms"] for r in memory[c])
    print(f"{c:>11} {d:>14.0f} {m:>13.0f} {d/m:>6.2f} {dp:>15.2f} {mp:>14.2f}")
    result["decrypt_data_key"].append({"concurrency": c, "durable_ops_per_s": d,
        "memory_ops_per_s": m, "ratio": d / m, "durable_p99_ms": dp, "memory_p99_ms": mp})
v = json.loads(verify_json)
sha_s = float(t1) - float(t0)
verify_mb_s = size / v["seconds"] / 1e6
sha_mb_s = size / sha_s / 1e6
print(f"\nverify: {v['records']} records in {v['seconds']:.2f} s = {v['records_per_second']:.0f} records/s "
      f"({verify_mb_s:.0f} MB/s; sha256 of the same file {sha_mb_s:.0f} MB/s; ratio {verify_mb_s/sha_mb_s:.2f})")
per_million = (size + cp_size) * 1e6 / records
print(f"size: {size/records:.0f} bytes per record; {per_million/1e6:.0f} MB per million records "
      f"(records.log {size} B, checkpoints.log {cp_size} B)")
result["verify"] = {"records": v["records"], "seconds": v["seconds"],
                    "records_per_second": v["records_per_second"], "mb_per_s": verify_mb_s,
                    "sha256_mb_per_s": sha_mb_s, "ratio_to_sha256": verify_mb_s / sha_mb_s,
                    "ok": v["ok"]}
result["size"] = {"bytes_per_record": size / records, "bytes_per_million": per_million}
json.dump(result, open("build/bench/audit_bench.json", "w"), indent=2)
PY
