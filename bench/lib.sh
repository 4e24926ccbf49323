# Shared by the benchmark scripts that start keywardd: sourced, not run,
# from the repository root.  Expects $build (the build directory).

# Creates build/bench and a scratch directory $work; on exit, stops every
# process the script started in the background (keywardd, helpers) and
# removes $work.
bench_scratch() {
  mkdir -p build/bench
  work=$(mktemp -d)
  trap bench_cleanup EXIT
}
bench_cleanup() {
  local p
  note_keywardd_rss
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  rm -rf "$work"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A `keyward dev init` setup in $work/dev on free ports; sets $port, $http.
dev_setup() {
  port=$(free_port)
  http=$(free_port)
  "$build/bin/keyward" dev init "$work/dev" --port "$port" --http-port "$http" >/dev/null
}

# Starts keywardd with CONFIG (default $work/dev/keywardd.yaml), log in
# $work/keywardd.log; sets $pid; waits for /healthz or exits showing the log.
start_keywardd() {
  "$build/bin/keywardd" --config "${1:-$work/dev/keywardd.yaml}" >>"$work/keywardd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$http/healthz" >/dev/null 2>&1; then
      sleep 0.5  # settled: what an idle keywardd holds
      keywardd_idle_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      return 0
    fi
    sleep 0.1
  done
  echo "keywardd did not start:" >&2
  cat "$work/keywardd.log" >&2
  exit 1
}

# keywardd's RSS idle (at start) and its peak (VmHWM) while the script ran,
# printed and appended to build/bench/keywardd_rss.jsonl (issue 18, memory);
# called on exit, before keywardd is stopped.
note_keywardd_rss() {
  [ -n "${pid:-}" ] && [ -r "/proc/$pid/status" ] || return 0
  local peak
  peak=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$peak" ] || return 0
  echo "keywardd RSS: idle ${keywardd_idle_kib:-?} KiB, peak (VmHWM) $peak KiB ($(basename "$0"))"
  mkdir -p "${root:-.}/build/bench"
  echo "{\"bench\": \"$(basename "$0")\", \"idle_kib\": ${keywardd_idle_kib:-null}, \"peak_kib\": $peak}" \
    >>"${root:-.}/build/bench/keywardd_rss.jsonl"
}
