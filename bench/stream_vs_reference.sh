#!/usr/bin/env bash
# Streaming encrypt/decrypt of a large file with the keyward CLI, beside the
# references the issue names, all measured in this run on one core:
#   - openssl speed -evp aes-256-gcm at 16 KiB blocks (in-memory ceiling)
#   - the age tool on the same file
# Usage: bench/stream_vs_reference.sh [SIZE_MIB] [BUILD_DIR]
# Each figure is the median of 5 runs (STREAM_BENCH_RUNS to change it).
# Also prints what one keyward process costs before it reads a byte
# (loading its 80 shared libraries): the share of the file -> /dev/null time
# that no change to the streaming code can remove.
# Prints a table and writes build/bench/stream_vs_reference.json.
set -euo pipefail
size_mib=${1:-256}
build=${2:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
keyward="$build/bin/keyward"
[ -x "$keyward" ] || { echo "build first: make build" >&2; exit 1; }
command -v age >/dev/null || { echo "age is not installed (scripts/install-deps)" >&2; exit 1; }
tmp_base=/dev/shm
[ -w "$tmp_base" ] || tmp_base=${TMPDIR:-/tmp}
work=$(mktemp -d "$tmp_base/keyward-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/keys" "$work/data"
pin="taskset -c 0"
command -v taskset >/dev/null || pin=""

head -c "$((size_mib << 20))" /dev/urandom > "$work/data/plain"
"$keyward" raw-key generate "$work/keys/raw.key" 2>/dev/null
age-keygen -o "$work/keys/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/keys/age.key")

# Median of 5 runs of a command, in seconds of CPU time (perf stat's
# task-clock: the command and its children, user and kernel): openssl speed
# divides by CPU time too, and on a shared machine wall time mostly
# measures the neighbours.  Wall time when perf is missing, or with
# STREAM_BENCH_CLOCK=wall.
runs=${STREAM_BENCH_RUNS:-5}
clock=${STREAM_BENCH_CLOCK:-cpu}
if [ "$clock" = cpu ] && ! perf stat -x, -e task-clock -o /dev/null true 2>/dev/null; then
  echo "perf stat is unavailable: measuring wall time" >&2
  clock=wall
fi
one_run() {
  if [ "$clock" = cpu ]; then
    perf stat -x, -e task-clock -o "$work/perf.txt" -- "$@" >/dev/null
    awk -F, '/task-clock/ {printf "%.6f\n", $1 / 1000}' "$work/perf.txt"
  else
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
  fi
}
best() {
  local times=()
  for _ in $(seq "$runs"); do times+=("$(one_run "$@")"); done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
mbps() { echo "scale=1; $size_mib / $1" | bc -l; }

# Crypto plus reading the file: output discarded.
enc_null=$(best $pin sh -c "'$keyward' encrypt --raw-key '$work/keys/raw.key' '$work/data/plain' > /dev/null")
"$keyward" encrypt --raw-key "$work/keys/raw.key" -o "$work/data/kw" "$work/data/plain"
dec_null=$(best $pin sh -c "'$keyward' decrypt --stream --raw-key '$work/keys/raw.key' '$work/data/kw' > /dev/null")
age_enc_null=$(best $pin sh -c "age -e -r '$recipient' '$work/data/plain' > /dev/null")
age -e -r "$recipient" -o "$work/data/age" "$work/data/plain"
age_dec_null=$(best $pin sh -c "age -d -i '$work/keys/age.key' '$work/data/age' > /dev/null")
# File to file (atomic output, fsync), and a plain copy of the same file as
# the I/O floor.
enc=$(best $pin "$keyward" encrypt --raw-key "$work/keys/raw.key" -o "$work/data/kw" "$work/data/plain")
dec=$(best $pin "$keyward" decrypt --raw-key "$work/keys/raw.key" -o "$work/data/kw.out" "$work/data/kw")
cmp -s "$work/data/plain" "$work/data/kw.out" || { echo "keyward round trip differs" >&2; exit 1; }
age_enc=$(best $pin age -e -r "$recipient" -o "$work/data/age" "$work/data/plain")
age_dec=$(best $pin age -d -i "$work/keys/age.key" -o "$work/data/age.out" "$work/data/age")
cmp -s "$work/data/plain" "$work/data/age.out" || { echo "age round trip differs" >&2; exit 1; }
copy=$(best $pin cp "$work/data/plain" "$work/data/copy")
# A whole keyward process that encrypts nothing: start-up and exit.
: > "$work/data/empty"
startup=$(best $pin sh -c "'$keyward' encrypt --raw-key '$work/keys/raw.key' '$work/data/empty' > /dev/null")
# openssl speed prints bytes per second in thousands; the last column is
# 16384.  The median of 3 one-second runs, spread over the run like the rest.
ossl_k=$(for _ in 1 2 3; do
           $pin openssl speed -evp aes-256-gcm -bytes 16384 -seconds 1 2>/dev/null |
             awk '/^AES-256-GCM|^aes-256-gcm/ {v=$NF} END {sub(/k$/, "", v); print v}'
         done | sort -g | sed -n 2p)
ossl=$(echo "scale=1; $ossl_k * 1000 / 1048576" | bc -l)

r() { echo "scale=2; $1 / $2" | bc -l; }
row() { printf '%-44s %9s  %s\n' "$1" "$2" "${3:-}"; }
k_enc_n=$(mbps "$enc_null"); k_dec_n=$(mbps "$dec_null")
a_enc_n=$(mbps "$age_enc_null"); a_dec_n=$(mbps "$age_dec_null")
k_enc=$(mbps "$enc"); k_dec=$(mbps "$dec")
a_enc=$(mbps "$age_enc"); a_dec=$(mbps "$age_dec"); cp_f=$(mbps "$copy")
row "${size_mib} MiB, one core ($tmp_base, $clock time)" "MiB/s" "ratio"
row "openssl speed -evp aes-256-gcm, 16 KiB" "$ossl" "reference"
row "keyward encrypt  file -> /dev/null" "$k_enc_n" "$(r "$k_enc_n" "$ossl") x openssl, $(r "$k_enc_n" "$a_enc_n") x age"
row "keyward decrypt  file -> /dev/null" "$k_dec_n" "$(r "$k_dec_n" "$ossl") x openssl, $(r "$k_dec_n" "$a_dec_n") x age"
row "age encrypt      file -> /dev/null" "$a_enc_n"
row "age decrypt      file -> /dev/null" "$a_dec_n"
row "keyward encrypt  file -> file" "$k_enc" "$(r "$k_enc" "$ossl") x openssl, $(r "$k_enc" "$a_enc") x age, $(r "$k_enc" "$cp_f") x cp"
row "keyward decrypt  file -> file" "$k_dec" "$(r "$k_dec" "$ossl") x openssl, $(r "$k_dec" "$a_dec") x age, $(r "$k_dec" "$cp_f") x cp"
row "age encrypt      file -> file" "$a_enc"
row "age decrypt      file -> file" "$a_dec"
row "cp               file -> file (I/O floor)" "$cp_f"
startup_ms=$(echo "scale=1; $startup * 1000 / 1" | bc -l)
row "keyward encrypt of an empty file (ms)" "$startup_ms" "start-up: $(echo "scale=0; 100 * $startup / $enc_null" | bc -l)% of the encrypt file -> /dev/null time"
k_enc_s=$(echo "scale=1; $size_mib / ($enc_null - $startup)" | bc -l)
k_dec_s=$(echo "scale=1; $size_mib / ($dec_null - $startup)" | bc -l)
row "keyward encrypt, start-up subtracted" "$k_enc_s" "$(r "$k_enc_s" "$ossl") x openssl (information only)"
row "keyward decrypt, start-up subtracted" "$k_dec_s" "$(r "$k_dec_s" "$ossl") x openssl (information only)"
mkdir -p build/bench
cat > build/bench/stream_vs_reference.json <<JSON
{"size_mib": $size_mib, "openssl_speed_16k_mibps": $ossl,
 "keyward_encrypt_null_mibps": $k_enc_n, "keyward_decrypt_null_mibps": $k_dec_n,
 "age_encrypt_null_mibps": $a_enc_n, "age_decrypt_null_mibps": $a_dec_n,
 "keyward_encrypt_file_mibps": $k_enc, "keyward_decrypt_file_mibps": $k_dec,
 "age_encrypt_file_mibps": $a_enc, "age_decrypt_file_mibps": $a_dec,
 "cp_file_mibps": $cp_f, "keyward_startup_ms": $startup_ms, "clock": "$clock",
 "keyward_encrypt_null_minus_startup_mibps": $k_enc_s,
 "keyward_decrypt_null_minus_startup_mibps": $k_dec_s, "runs": $runs}
JSON
