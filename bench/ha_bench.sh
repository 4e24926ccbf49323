#!/usr/bin/env bash
# keywardd over PostgreSQL against keywardd over SQLite, in one run (issue
# 14): data-key operations (cached data keys: GenerateDataKey,
# DecryptDataKey), key creations and rotations, at 1 and 64 calls in
# flight, through
#   1. one keywardd on SQLite (the embedded default, the reference);
#   2. one keywardd replica of the local HA stack (scripts/ha-stack:
#      PostgreSQL primary + synchronous standby under Patroni, audit records
#      committed and replicated in PostgreSQL);
#   3. all three replicas (the client spreads calls over them).
# Everything runs on this one machine, so three replicas share its cores
# with PostgreSQL: expect no gain from 3, only the cost of PostgreSQL.
# Run as root (PostgreSQL runs as the postgres user).  Writes
# build/bench/ha_*.json and prints the ratios.
#   bench/ha_bench.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
seconds=${1:-3}
build=${2:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
bench_scratch
chmod 755 "$work"
ops=GenerateDataKey,DecryptDataKey,CreateKey,RotateKey
load() {  # NAME APP_CONFIG ADMIN_CONFIG
  echo "== $1"
  "$build/bench/kms_load" --config "$2" --admin "$3" --seconds "$seconds" \
    --concurrency 1,64 --only "$ops" --json-out "build/bench/ha_$1.json"
}

# 1. SQLite, one keywardd.
dev_setup
start_keywardd
load sqlite "$work/dev/app.yaml" "$work/dev/admin.yaml"
kill "$pid"; wait "$pid" 2>/dev/null || true

# 2 and 3. The HA stack.
stack="$work/ha"
KEYWARD_BIN="$(cd "$build" && pwd)/bin" scripts/ha-stack start "$stack" >"$work/ha-start.log" 2>&1 ||
  { cat "$work/ha-start.log" >&2; exit 1; }
stop_stack() { scripts/ha-stack stop "$stack" >/dev/null 2>&1 || true; bench_cleanup; }
trap stop_stack EXIT
k="$stack/keyward"
r1=$(jq -r '.keywardd[0].listen' "$stack/stack.json")
for who in app admin; do
  sed "s/^servers:.*/servers: [$r1]/" "$k/$who.yaml" >"$k/$who-r1.yaml"
done
load postgres-1-replica "$k/app-r1.yaml" "$k/admin-r1.yaml"
load postgres-3-replicas "$k/app.yaml" "$k/admin.yaml"

python3 - <<'PY'
import json
def rows(name):
    return {(r["op"], r.get("concurrency")): r for r in json.load(open(f"build/bench/ha_{name}.json"))
            if "ops_per_s" in r}
ref = rows("sqlite")
print()
print(f"{'operation':<18} {'conc':>4} {'SQLite ops/s':>13} {'PG 1 ops/s':>11} {'ratio':>6} {'PG 3 ops/s':>11} {'ratio':>6}  p99 ms (SQLite / PG 1 / PG 3)")
for name in ("postgres-1-replica", "postgres-3-replicas"):
    globals()[name.replace("-", "_")] = rows(name)
for key, r in ref.items():
    a = postgres_1_replica.get(key); b = postgres_3_replicas.get(key)
    if not a or not b: continue
    print(f"{key[0]:<18} {key[1]:>4} {r['ops_per_s']:>13.0f} {a['ops_per_s']:>11.0f} "
          f"{a['ops_per_s'] / r['ops_per_s']:>5.2f}x {b['ops_per_s']:>11.0f} "
          f"{b['ops_per_s'] / r['ops_per_s']:>5.2f}x  {r['p99_ms']:.2f} / {a['p99_ms']:.2f} / {b['p99_ms']:.2f}")
PY
