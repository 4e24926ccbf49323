#!/usr/bin/env bash
# The Python package and the C API under it, against a dev keywardd, crossed
# with the C++ CLI (tests/python/test_keyward.py).  Also compiles
# include/keyward/keyward.h as C11 and runs a C round trip.
#   tests/python/run.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
cd "$root"
. "$root/bench/lib.sh"   # bench_scratch, dev_setup, start_keywardd
bench_scratch
dev_setup
start_keywardd
"$build/bin/keyward" --config "$work/dev/admin.yaml" key create py/cards >/dev/null
"$build/bin/keyward" --config "$work/dev/admin.yaml" key create py/notes >/dev/null

echo "== C API from C"
cc -std=c11 -Wall -Wextra -Werror -I include -o "$work/c_round_trip" tests/python/c_round_trip.c \
  -L "$build/lib" -lkeyward -Wl,-rpath,"$build/lib"
"$work/c_round_trip" "$work/dev/app.yaml" py/cards

echo "== Python"
KEYWARD_LIBRARY="$build/lib/libkeyward.so" KEYWARD_TEST_DIR="$work/dev" \
  KEYWARD_CLI="$build/bin/keyward" PYTHONPATH="$root/python" \
  python3 -m unittest -v tests/python/test_keyward.py 2>&1
