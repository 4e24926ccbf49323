#!/usr/bin/env bash
# The targets of issue 18 that this tree measures, each ratio beside its
# reference from the same run, read from what the benchmarks wrote:
#   build/bench/stream_vs_reference.json   (bench/stream_vs_reference.sh)
#   build/bench/format_bench_1k.json       (format_bench, run here)
#   build/bench/kms_load.json              (bench/load_bench.sh)
#   build/bench/keywardd_rss.jsonl         (every script that starts keywardd)
# Usage: bench/issue18_targets.sh [BUILD_DIR]   (after the benchmarks ran;
# `make bench` runs them all, then this)
set -euo pipefail
build=${1:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build/bench
# 1 KiB messages: Keyward and raw EVP in one process, 9 repetitions
# interleaved at random (so a noisy moment hits both alike), medians.
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""
$pin "$build/bench/format_bench" \
  --benchmark_filter='^BM_(Encrypt|Decrypt|RawEvpAes256Gcm)/1024$' \
  --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 --benchmark_format=json \
  --benchmark_out=build/bench/format_bench_1k.json --benchmark_out_format=json >/dev/null 2>&1
python3 - "$@" <<'PY'
import json, os

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def verdict(ok):
    return "met" if ok else "NOT met"

print("== issue 18: each ratio beside its reference from the same run ==")
s = load("build/bench/stream_vs_reference.json")
if s:
    o = s["openssl_speed_16k_mibps"]
    for d, a in (("encrypt", "age_encrypt_null_mibps"), ("decrypt", "age_decrypt_null_mibps")):
        k = s[f"keyward_{d}_null_mibps"]
        print(f"1. streaming {d:7s} file -> /dev/null  {k:7.0f} MiB/s ({s.get('clock', 'wall')} time) | openssl speed 16 KiB {o:.0f} "
              f"-> {k / o:.2f}x (>= 0.8x {verdict(k / o >= 0.8)}) | age {s[a]:.0f} -> "
              f"{k / s[a]:.2f}x (>= 2x {verdict(k / s[a] >= 2)})")
else:
    print("1. streaming: no build/bench/stream_vs_reference.json (run bench/stream_vs_reference.sh)")

f = load("build/bench/format_bench_1k.json")
if f:
    # CPU time: the reference and Keyward in one process, one core; wall
    # time on this shared machine mostly measures the neighbours.
    med = {b["run_name"]: b["cpu_time"] for b in f["benchmarks"] if b.get("aggregate_name") == "median"}
    unit = {b["run_name"]: b["time_unit"] for b in f["benchmarks"]}
    raw, enc, dec = (med.get(f"BM_{n}/1024") for n in ("RawEvpAes256Gcm", "Encrypt", "Decrypt"))
    if raw and enc:
        u = unit["BM_Encrypt/1024"]
        print(f"2. 1 KiB message, cached data key (CPU time, median of 9 interleaved): encrypt {enc:.0f} {u}, decrypt {dec:.0f} {u} | "
              f"raw EVP AES-256-GCM 1 KiB {raw:.0f} {u} -> encrypt {raw / enc:.2f}x, decrypt "
              f"{raw / dec:.2f}x (encrypt >= 0.25x {verdict(raw / enc >= 0.25)})")
    if s and "keyward_startup_ms" in s:
        print(f"   streaming: keyward start-up {s['keyward_startup_ms']:.0f} ms per process; start-up subtracted "
              f"{s['keyward_encrypt_null_minus_startup_mibps'] / s['openssl_speed_16k_mibps']:.2f}x / "
              f"{s['keyward_decrypt_null_minus_startup_mibps'] / s['openssl_speed_16k_mibps']:.2f}x openssl "
              f"(information only)")

k = load("build/bench/kms_load.json")
fs = load("build/bench/fdatasync_probe.json")
if k:
    rows = {(r["op"], r.get("concurrency")): r for r in k if "ops_per_s" in r}
    bare = rows.get(("bare gRPC service (no-op)", 64))
    for op in ("GenerateDataKey", "DecryptDataKey"):
        r = rows.get((op, 64))
        if bare and r:
            t = r["ops_per_s"] / bare["ops_per_s"]
            p = r["p99_ms"] / bare["p99_ms"]
            print(f"3. {op} 64 in flight: {r['ops_per_s']:.0f}/s p99 {r['p99_ms']:.2f} ms | bare gRPC "
                  f"{bare['ops_per_s']:.0f}/s p99 {bare['p99_ms']:.2f} ms -> {t:.2f}x (>= 0.6x "
                  f"{verdict(t >= 0.6)}), p99 {p:.2f}x (<= 1.5x {verdict(p <= 1.5)})")
    bare = rows.get(("bare gRPC service (no-op)", 1))
    for op in ("GenerateDataKey", "DecryptDataKey"):
        r = rows.get((op, 1))
        if bare and r and fs:
            # Mean latency of one client alone is 1 / its rate.
            lat, bare_lat = 1000 / r["ops_per_s"], 1000 / bare["ops_per_s"]
            floor = fs["mean_us"] / 1000 + 2 * bare_lat
            print(f"4. {op} 1 in flight: {lat:.3f} ms mean (p50 {r['p50_ms']:.3f}) | fdatasync "
                  f"{fs['mean_us'] / 1000:.3f} ms mean (p50 {fs['p50_us'] / 1000:.3f}) + 2 x bare "
                  f"{bare_lat:.3f} ms = {floor:.3f} ms -> {lat / floor:.2f}x of the bound "
                  f"(<= 1 {verdict(lat <= floor)})")

mem = []
if os.path.exists("build/bench/keywardd_rss.jsonl"):
    with open("build/bench/keywardd_rss.jsonl") as fh:
        mem = [json.loads(line) for line in fh if line.strip()]
if mem:
    idle = max(m["idle_kib"] for m in mem if m.get("idle_kib") is not None) / 1024
    print(f"5. keywardd RSS idle (largest of {len(mem)} starts): {idle:.1f} MiB | limit 50 MiB "
          f"-> {verdict(idle <= 50)}")
    for m in mem:
        if m.get("peak_kib") is not None:
            peak = m["peak_kib"] / 1024
            print(f"5. keywardd peak RSS (VmHWM) under {m['bench']}: {peak:.1f} MiB | limit 200 MiB "
                  f"-> {verdict(peak <= 200)}")
else:
    print("5. memory: no build/bench/keywardd_rss.jsonl (run a benchmark that starts keywardd)")
print("   SDK caches bounded by max_entries with a million distinct contexts: sdk_test "
      "*AMillionDistinct* (a test, not a benchmark)")
PY
