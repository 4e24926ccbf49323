#!/usr/bin/env bash
# Where keywardd's CPU goes per audited data-key call (issue 18, point 3):
# a fresh dev setup, keywardd under kms_load at CONCURRENCY in flight, and
# `perf record` (software cpu-clock, DWARF call graphs) on keywardd alone
# meanwhile.  Each sample is charged to the innermost Keyward component on
# its stack (policy, context hashing, record serialization, Merkle hashing,
# the audit write and its fdatasync, ...); samples with none are gRPC and
# TLS, split into user space and the kernel by what the stack shows.
# Prints a table (share of keywardd's CPU and CPU µs per call) and writes
# build/bench/cpu_breakdown.json.
#   bench/cpu_breakdown.sh [SECONDS] [OP] [CONCURRENCY] [BUILD_DIR]
set -euo pipefail
seconds=${1:-4}
op=${2:-GenerateDataKey}
concurrency=${3:-64}
build=${4:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/bench/lib.sh"
command -v perf >/dev/null || { echo "cpu_breakdown: needs perf (apt-get install linux-perf)" >&2; exit 2; }
bench_scratch
dev_setup
start_keywardd
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# A first short run warms keywardd (threads, caches, the key) before the
# measured one.
"$build/bench/kms_load" --config "$work/dev/app.yaml" --admin "$work/dev/admin.yaml" \
  --seconds 1 --only "$op" --concurrency "$concurrency" --json-out "$work/warm.json" >/dev/null
perf record -e cpu-clock -F 997 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" \
  -- sleep "$((seconds + 1))" >/dev/null 2>"$work/perf.log" &
perf_pid=$!
sleep 0.5
t0=$(cpu_ticks)
"$build/bench/kms_load" --config "$work/dev/app.yaml" --admin "$work/dev/admin.yaml" \
  --seconds "$seconds" --only "$op" --concurrency "$concurrency" --json-out "$work/load.json"
t1=$(cpu_ticks)
wait "$perf_pid" || { cat "$work/perf.log" >&2; exit 1; }
perf script -i "$work/perf.data" -F comm,tid,ip,sym,dso 2>"$work/perf-script.log" >"$work/perf.txt" || { cat "$work/perf-script.log" >&2; exit 1; }
cp "$work/perf.txt" build/bench/cpu_breakdown.perf.txt
python3 - "$work/perf.txt" "$work/load.json" "$((t1 - t0))" "$(getconf CLK_TCK)" "$seconds" "$op" \
  "$concurrency" <<'PY'
import json, re, sys

perf_txt, load_json, ticks, hz, seconds, op, conc = sys.argv[1:]
ticks, hz, seconds, conc = int(ticks), int(hz), float(seconds), int(conc)
load = [r for r in json.load(open(load_json)) if r.get("op") == op]
calls = load[0]["ops_per_s"] * seconds if load else 0

# Innermost match wins: a SHA-256 block under HashContext is context
# hashing, the same block under LeafHash is Merkle hashing.
components = [
    ("policy evaluation", r"keyward::policy::|Call::Authorize"),
    ("context hashing (HMAC)", r"HashContext"),
    ("audit record encoding", r"EncodeRecordBody|SerializeRecord|ChainBinaryRecord|ChainRecord|record_codec|StringTable"),
    ("Merkle and chain hashing", r"LeafHash|MerkleTree|merkle|NodeHash|Sha256Concat"),
    ("audit write + fdatasync", r"AppendRecords|FileStorage|SegmentWriter|WriteDurably|fdatasync"),
    ("audit queue and hand-offs", r"AuditLog::(Submit|WriterLoop|CompletionLoop|WatchLoop)"),
    ("data key: generate + wrap", r"keyward::kms::|KeyService|DataKey|Keyring|crypto::Aead|AesGcm|FillRandom|NonceAead|SecretData|KeyReference"),
    ("call state: set-up, reply building, teardown", r"CallState::(CallState|~CallState)|Arena|AuditRecord::|Pending::~Pending|_Sp_counted|server::Serialize|ToProto|FromProto"),
    ("metrics", r"keyward::metrics::"),
    ("request log", r"keyward::Log|LogEnabled"),
    ("admission (fair scheduler)", r"FairScheduler|Tarpit|RefusalSummary"),
    ("request checks and parsing", r"ScanRequest|RequestLimits|ParseFromZeroCopy|MergePartialFrom|_InternalParse"),
    ("reply serialization", r"Serialize\(|_InternalSerialize|ByteSizeLong"),
    ("call pipeline (other Keyward code)", r"keyward::"),
]
compiled = [(n, re.compile(p)) for n, p in components]
kernel_net = re.compile(r"tcp_|ip_|inet_|sock_|skb|netif|loopback|__sys_(send|recv)|sendmsg|recvmsg|net_rx")
kernel_sched = re.compile(r"futex|schedule|__x64_sys_(futex|sched)|try_to_wake|finish_task_switch|epoll|do_nanosleep")

counts = {}
def charge(name):
    counts[name] = counts.get(name, 0) + 1

total = 0
stack = []
def flush():
    global total
    if not stack:
        return
    total += 1
    # Frames leaf first.  gRPC's own work done on a Keyward thread (the
    # reply written from the audit writer, a request read before a handler
    # runs on gRPC's thread) is gRPC's, not the Keyward frame's below it.
    for depth, (sym, dso) in enumerate(stack):
        hit = next((name for name, rx in compiled if rx.search(sym)), None)
        if hit is None:
            continue
        if not any("libgrpc" in d for _, d in stack[:depth]):
            return charge(hit)
        break
    leaf_sym, leaf_dso = stack[0]
    kernel = "kernel" in leaf_dso
    text = " ".join(s for s, _ in stack)
    if kernel:
        if kernel_net.search(text):
            return charge("gRPC: kernel TCP (loopback)")
        if kernel_sched.search(text):
            return charge("thread wake-ups and waits (kernel)")
        return charge("kernel, other")
    if re.search(r"libssl|libcrypto", leaf_dso):
        return charge("gRPC: TLS record protection")
    if re.search(r"malloc|free|operator new|operator delete|tcache|_int_", leaf_sym):
        return charge("allocation outside Keyward frames (gRPC)")
    if re.search(r"grpc|gpr|absl", leaf_dso + " " + text):
        return charge("gRPC: core and C++ layer")
    return charge("other (libc, unknown)")

frame = re.compile(r"^\s+(?:[0-9a-f]+\s+)?(.*?)\s+\((.*)\)\s*$")
with open(perf_txt, errors="replace") as f:
    for line in f:
        if not line.strip():
            flush()
            stack = []
            continue
        if not line.startswith((" ", "\t")):
            flush()
            stack = []
            continue
        m = frame.match(line)
        if m:
            stack.append((m.group(1), m.group(2)))
flush()

cpu_s = ticks / hz
us_per_call = cpu_s * 1e6 / calls if calls else 0
print(f"\nkeywardd CPU while {op} ran at {conc} in flight for {seconds:.0f} s: "
      f"{cpu_s:.2f} s CPU for {calls:,.0f} calls = {us_per_call:.1f} µs CPU per call "
      f"({total} samples)")
print(f"{'where':40s} {'share':>7s} {'µs/call':>8s}")
rows = []
for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
    share = n / total if total else 0
    rows.append({"where": name, "samples": n, "share": share, "us_per_call": share * us_per_call})
    print(f"{name:40s} {share * 100:6.1f}% {share * us_per_call:8.1f}")
json.dump({"op": op, "concurrency": conc, "seconds": seconds, "calls": calls,
           "cpu_seconds": cpu_s, "us_cpu_per_call": us_per_call, "samples": total,
           "rows": rows}, open("build/bench/cpu_breakdown.json", "w"), indent=2)
PY
