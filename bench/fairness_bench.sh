#!/usr/bin/env bash
# Fairness under a flood (docs/security.md, issue 16 item 3): one principal
# (admin) calls GenerateDataKey one at a time while another (app) floods
# keywardd with maximal valid requests (10,000-key batches) and maximal
# invalid ones (3.5 MB, 330,000-entry contexts).  Reports the victim's p99
# unloaded and under the flood, in the same run, and their ratio.
#
# The flood (build/tests/flood_client) runs at the lowest CPU priority:
# on a machine shared with keywardd and the victim it stands in for a
# client on a machine of its own, whose own TLS work would otherwise be
# charged to keywardd's latency.
#   bench/fairness_bench.sh [ROUNDS] [SECONDS] [BUILD_DIR]
set -euo pipefail
rounds=${1:-3}
seconds=${2:-4}
build=${3:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
flood_client="$build/tests/flood_client"
[ -x "$flood_client" ] || { echo "build $flood_client first (make build)" >&2; exit 2; }
bench_scratch
dev_setup
start_keywardd
"$build/bin/keyward" --config "$work/dev/admin.yaml" key create victim >/dev/null

victim_p99() {  # $1: output json
  "$build/bench/kms_load" --config "$work/dev/admin.yaml" --admin "$work/dev/admin.yaml" \
    --only GenerateDataKey --concurrency 1 --seconds "$seconds" --json-out "$1" >/dev/null
  python3 -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x.get("op")=="GenerateDataKey"][0]; print(r["p99_ms"], r["errors"])' "$1"
}

printf '%-6s %-8s %14s %14s %8s %10s %s\n' round flood "p99 unloaded" "p99 flooded" ratio "victim err" "flood calls/refused"
for r in $(seq "$rounds"); do
  for mode in mixed valid invalid; do
    read -r base base_err < <(victim_p99 "$work/base.json")
    nice -n 19 "$flood_client" "$port" "$work/dev/certs/ca.pem" "$work/dev/certs/app.pem" \
      "$work/dev/certs/app.key" "$mode" 8 $((seconds + 2)) >"$work/flood.out" &
    flood=$!
    sleep 1
    read -r loaded loaded_err < <(victim_p99 "$work/loaded.json")
    wait "$flood"
    ratio=$(python3 -c "print(f'{$loaded/$base:.2f}x')")
    printf '%-6s %-8s %11.2f ms %11.2f ms %8s %10s %s\n' "$r" "$mode" "$base" "$loaded" "$ratio" \
      "$loaded_err" "$(cat "$work/flood.out")"
  done
done
records=$("$build/bin/keyward" --config "$work/dev/admin.yaml" audit segments --json |
  python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["pruned_records"] + sum(x["records"] for x in s["segments"]))')
echo "keywardd: $records audit records; peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
