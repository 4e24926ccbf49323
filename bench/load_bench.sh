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
mkdir -p build/bench
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null
  [ -n "${bare:-}" ] && kill "$bare" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/bin/keyward" dev init "$work/dev" --port "$port" --http-port "$http" >/dev/null
"$build/bin/keywardd" --config "$work/dev/keywardd.yaml" >"$work/keywardd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
bare_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/bench/kms_load" --bare-server "$work/dev" "127.0.0.1:$bare_port" &
bare=$!
sleep 0.5
echo "keywardd pid $pid, idle RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
"$build/bench/kms_load" --config "$work/dev/app.yaml" --admin "$work/dev/admin.yaml" \
  --seconds "$seconds" --server-pid "$pid" --bare "127.0.0.1:$bare_port"
kill "$bare" 2>/dev/null || true
