#!/usr/bin/env bash
# The cost of the durable audit log, measured in one run:
#  1. DecryptDataKey ops/s through keywardd with the audit log on disk
#     (group commit, fdatasync) against the same keywardd with its audit
#     sink in memory (audit.in_memory, accepted only for "bench*"
#     environments), alternating twice to even out a noisy machine;
#  2. an hour's equivalent of records (at the rate measured in 1, or
#     RECORDS) written through the audit log in 64 MiB segments: the
#     sustained rate, bytes per record (segments, and the whole directory
#     with checkpoints), the disk before and after archive + prune;
#  3. `keyward audit verify` of the live log with its archive: seconds per
#     million records, against `openssl dgst -sha256` over the same bytes.
# Writes build/bench/audit_bench.json.
#   bench/audit_bench.sh [SECONDS] [RECORDS|hour] [BUILD_DIR]
set -euo pipefail
seconds=${1:-3}
records=${2:-hour}
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

# An hour of records at the rate keywardd sustained above (64 in flight,
# durable), unless RECORDS was given.
if [ "$records" = hour ]; then
  records=$(python3 - "$work" <<'PY'
import json, statistics, sys
rows = [r for k in (1, 2) for r in json.load(open(f"{sys.argv[1]}/durable-{k}.json"))
        if r.get("op") == "DecryptDataKey" and r["concurrency"] == 64]
print(int(statistics.median(r["ops_per_s"] for r in rows) * 3600))
PY
)
fi
echo "== an hour's equivalent: $records records written, archived, pruned, verified =="
gen_json=$("$build/bench/audit_log_gen" "$work/log" "$records" --segment-mib 64 \
  --archive-and-prune "$work/archive")
echo "$gen_json"
key="$work/log/bench-key.pem"
verify_json=$("$build/bin/keyward" audit verify --log "$work/log" --archive "$work/archive" \
  --checkpoint-key "$key" --json)
echo "$verify_json"
live_json=$("$build/bin/keyward" audit verify --log "$work/log" --checkpoint-key "$key" --json)
echo "$live_json"
# The segments verified (the archive's, or the live log's when fewer
# records than one segment were written).
segs="$work/archive/segments"
ls "$segs"/*.seg >/dev/null 2>&1 || segs="$work/log/segments"
bytes=$(du -sb "$segs" | cut -f1)
t0=$(date +%s.%N)
cat "$segs"/* | openssl dgst -sha256 >/dev/null
t1=$(date +%s.%N)

python3 - "$work" "$verify_json" "$bytes" "$t0" "$t1" "$records" "$gen_json" "$live_json" <<'PY'
import json, sys, statistics
work, verify_json, size, t0, t1, records, gen_json, live_json = sys.argv[1:]
size, records = int(size), int(records)
gen, live = json.loads(gen_json), json.loads(live_json)
def load(mode):
    out = {}
    for r in (1, 2):
        for row in json.load(open(f"{work}/{mode}-{r}.json")):
            if row.get("op") == "DecryptDataKey":
                out.setdefault(row["concurrency"], []).append(row)
    return out
durable, memory = load("durable"), load("memory")
result = {"decrypt_data_key": [], "verify": {}, "size": {}, "scale": {}}
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
print(f"\nwritten: {records} records (an hour at the durable rate above) at a sustained "
      f"{gen['records_per_second']:.0f} records/s into {gen['segments']} segment(s)")
print(f"size: {gen['segment_bytes']/records:.1f} bytes per record in segments, "
      f"{gen['dir_bytes']/records:.1f} bytes per record for the whole directory "
      f"({gen['dir_bytes']} B: segments, checkpoints, keys)")
print(f"archive + prune: {gen['archived_segments']} segments archived in {gen['archive_seconds']:.1f} s; "
      f"live directory {gen['dir_bytes']} B -> {gen['dir_bytes_after_prune']} B after pruning "
      f"{gen['pruned_records']} records; archive {gen['archive_bytes']} B")
print(f"verify (live + archive): {v['records']} records in {v['seconds']:.2f} s = "
      f"{v['seconds']*1e6/max(v['records'],1):.2f} s per million records "
      f"({verify_mb_s:.0f} MB/s of segments; sha256 of the same bytes {sha_mb_s:.0f} MB/s); ok={v['ok']}")
print(f"verify (live log only, after the prune): {live['records']} records, ok={live['ok']}, "
      f"{live['seconds']:.3f} s")
result["verify"] = {"records": v["records"], "seconds": v["seconds"],
                    "seconds_per_million": v["seconds"] * 1e6 / max(v["records"], 1),
                    "records_per_second": v["records_per_second"], "mb_per_s": verify_mb_s,
                    "sha256_mb_per_s": sha_mb_s, "ok": v["ok"], "live_only_ok": live["ok"]}
result["size"] = {"bytes_per_record_segments": gen["segment_bytes"] / records,
                  "bytes_per_record_directory": gen["dir_bytes"] / records,
                  "dir_bytes": gen["dir_bytes"], "dir_bytes_after_prune": gen["dir_bytes_after_prune"],
                  "archive_bytes": gen["archive_bytes"]}
result["scale"] = gen
json.dump(result, open("build/bench/audit_bench.json", "w"), indent=2)
PY
