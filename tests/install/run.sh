#!/usr/bin/env bash
# The SDK as a user meets it (issue 17): install the build into a scratch
# prefix, build a consumer project out of tree against the installed
# package with CMake (shared and static) and with pkg-config, and run each
# against a dev keywardd started from the installed binaries.  The CLI then
# decrypts what the consumer wrote.
#   tests/install/run.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
builddir=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
cd "$root"
. "$root/bench/lib.sh"   # bench_scratch, dev_setup, start_keywardd
bench_scratch
prefix="$work/prefix"
cmake --install "$builddir" --prefix "$prefix" >"$work/install.log"
build="$prefix"          # dev_setup and start_keywardd use $build/bin

echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"
so=$(readlink -f "$prefix"/lib*/libkeyward.so)
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[[ "$soname" =~ ^libkeyward\.so\.[0-9]+\.[0-9]+$ ]] || { echo "bad SONAME '$soname'" >&2; exit 1; }
echo "SONAME: $soname"
grep -q "ExecStart=$prefix/bin/keywardd" "$prefix/lib/systemd/system/keywardd.service" ||
  { echo "systemd unit does not start the installed keywardd" >&2; exit 1; }
# Only include/keyward is public, and it is complete on its own.
for h in "$prefix"/include/keyward/*.h; do
  if grep -hoE '#include "[^"]+"' "$h" | grep -vE '"(keyward|absl)/'; then
    echo "$h includes a private header" >&2; exit 1
  fi
done

echo "== consumer built with CMake (find_package(Keyward CONFIG))"
cmake -S tests/install/consumer -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$work/consumer.log" ||
  { cat "$work/consumer.log"; exit 1; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }

echo "== consumer built with pkg-config"
export PKG_CONFIG_PATH="$(dirname "$prefix"/lib*/pkgconfig/keyward.pc)"
# shellcheck disable=SC2046
c++ -O1 -o "$work/consumer_pc" tests/install/consumer/consumer.cc \
  -std=c++20 $(pkg-config --cflags --libs keyward) -Wl,-rpath,"$(dirname "$so")"
grep -q "$soname" <<<"$(ldd "$work/consumer_pc")" || { echo "not linked to $soname" >&2; exit 1; }

dev_setup
start_keywardd
kw="$prefix/bin/keyward"
"$kw" --config "$work/dev/admin.yaml" key create consumer/records >/dev/null
for bin in "$work/consumer/consumer" "$work/consumer/consumer_static" "$work/consumer_pc"; do
  LD_LIBRARY_PATH="$(dirname "$so")" "$bin" "$work/dev/app.yaml" consumer/records \
    "hello from $(basename "$bin")" "$work/msg.kw"
  got=$("$kw" --config "$work/dev/app.yaml" decrypt --context app=consumer "$work/msg.kw")
  [ "$got" = "hello from $(basename "$bin")" ] || { echo "CLI read '$got'" >&2; exit 1; }
  echo "$(basename "$bin"): the CLI decrypts what it wrote"
done
echo "install test: ok"
