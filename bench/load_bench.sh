#!/usr/bin/env bash
# keywardd under load over mutual TLS on loopback: a fresh dev setup in a
# temporary directory, keywardd started, kms_load driving it, keywardd's RSS
# idle and under load.  Writes build/bench/kms_load.json.
#   bench/load_bench.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
seconds=${1:-3}
build=${2:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
bench_scratch
dev_setup
start_keywardd
bare_port=$(free_port)
"$build/bench/kms_load" --bare-server "$work/dev" "127.0.0.1:$bare_port" &
bare=$!
sleep 0.5
# The floor under one audited call (issue 18, point 4): one durable append
# on the disk of the audit log, measured in the same run.
mkdir -p "$work/dev/audit"
"$build/bench/fdatasync_probe" "$work/dev/audit" 2000 >build/bench/fdatasync_probe.json
echo "fdatasync on the audit log's disk: $(cat build/bench/fdatasync_probe.json)"
echo "keywardd pid $pid, idle RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
"$build/bench/kms_load" --config "$work/dev/app.yaml" --admin "$work/dev/admin.yaml" \
  --seconds "$seconds" --server-pid "$pid" --bare "127.0.0.1:$bare_port"
kill "$bare" 2>/dev/null || true
