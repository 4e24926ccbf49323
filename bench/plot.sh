#!/usr/bin/env bash
# Draws the benchmark report's plots (PNG, gnuplot) into docs/img/:
#   latency_vs_concurrency.png  p50/p99 per operation against clients in
#                               flight, from build/bench/kms_load.json
#                               (bench/load_bench.sh), with the bare gRPC
#                               no-op server as the in-run reference;
#   throughput_vs_size.png      MiB/s against message size for encrypt and
#                               decrypt with a cached data key, beside raw
#                               EVP AES-256-GCM measured in the same run
#                               (format_bench, run here, one core).
#   bench/plot.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build/bench docs/img
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is missing (scripts/install-deps)" >&2; exit 1; }
[ -f build/bench/kms_load.json ] || "$root/bench/load_bench.sh" 3 "$build"

# draw PNG PLOT_FILE SETTINGS: one chart in the report's common style.
draw() {
  gnuplot <<GP
set terminal pngcairo size 900,540 font "DejaVu Sans,10"
set output "$1"
set key top left
set grid
$3
load "$2"
GP
}

# 1. Latency against concurrency.
python3 - <<'PY'
import json
rows = json.load(open("build/bench/kms_load.json"))
ops = ["bare gRPC service (no-op)", "GetServerInfo (no-op)", "GenerateDataKey", "DecryptDataKey"]
plots = []
with open("build/bench/latency.dat", "w") as f:
    for i, op in enumerate(ops):
        for r in sorted((r for r in rows if r.get("op") == op), key=lambda r: r["concurrency"]):
            f.write(f'{r["concurrency"]} {r["p50_ms"]} {r["p99_ms"]} {r["ops_per_s"]}\n')
        f.write("\n\n")
        plots.append(f'"build/bench/latency.dat" index {i} using 1:3 with linespoints lw 2 lc {i + 1} title "{op} p99"')
        plots.append(f'"build/bench/latency.dat" index {i} using 1:2 with linespoints dt 2 lc {i + 1} title "{op} p50"')
open("build/bench/latency.plot", "w").write("plot " + ", \\\n     ".join(plots) + "\n")
PY
draw docs/img/latency_vs_concurrency.png build/bench/latency.plot '
set title "keywardd over mutual TLS 1.3, durable audit: latency against clients in flight"
set xlabel "clients in flight"
set ylabel "latency (ms)"
set logscale x 2
set xrange [0.8:80]
set xtics (1, 4, 16, 64)' 

# 2. Throughput against message size.
sweep=("$build/bench/format_bench" --benchmark_filter='BM_(Encrypt|Decrypt|RawEvpAes256Gcm)/'
       --benchmark_min_time=0.2 --benchmark_format=json)
taskset -c 0 "${sweep[@]}" >build/bench/format_sizes.json 2>/dev/null ||
  "${sweep[@]}" >build/bench/format_sizes.json
python3 - <<'PY'
import json
bench = json.load(open("build/bench/format_sizes.json"))["benchmarks"]
series = {"BM_Encrypt": "keyward encrypt (cached data key)", "BM_Decrypt": "keyward decrypt",
          "BM_RawEvpAes256Gcm": "raw EVP AES-256-GCM (reference)"}
plots = []
with open("build/bench/sizes.dat", "w") as f:
    for i, (prefix, title) in enumerate(series.items()):
        for b in bench:
            name, _, size = b["name"].partition("/")
            if name == prefix:
                f.write(f'{size} {b["bytes_per_second"] / (1 << 20)}\n')
        f.write("\n\n")
        plots.append(f'"build/bench/sizes.dat" index {i} using 1:2 with linespoints lw 2 title "{title}"')
open("build/bench/sizes.plot", "w").write("plot " + ", \\\n     ".join(plots) + "\n")
PY
draw docs/img/throughput_vs_size.png build/bench/sizes.plot '
set title "Message format, one core, in memory: throughput against message size"
set xlabel "message size (bytes)"
set ylabel "MiB/s"
set logscale x 2
set logscale y 10
set xtics ("64 B" 64, "1 KiB" 1024, "16 KiB" 16384, "256 KiB" 262144, "4 MiB" 4194304)' 
echo "plot.sh: wrote docs/img/latency_vs_concurrency.png and docs/img/throughput_vs_size.png"
