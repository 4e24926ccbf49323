#!/usr/bin/env bash
# The Debian package installs and removes cleanly (issue 17): cpack -G DEB,
# dpkg -i, the binaries, library and pkg-config file are where Debian looks,
# keyward --help runs from PATH, then dpkg -r leaves none of its files.
# Needs root and dpkg; exits 77 (skipped) without them or when a keyward
# package is already installed on this machine (it is not ours to replace).
#   tests/install/deb.sh BUILD_DIR
set -euo pipefail
builddir=$(cd "${1:?usage: deb.sh BUILD_DIR}" && pwd)
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null; then
  echo "skipped: needs root and dpkg (CI runs it as root)"; exit 77
fi
if dpkg-query -W -f='${Status}' keyward 2>/dev/null | grep -q "install ok installed"; then
  echo "skipped: a keyward package is already installed here"; exit 77
fi
work=$(mktemp -d)
trap 'dpkg -P keyward >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
(cd "$builddir" && cpack -G DEB -B "$work" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/keyward_*.deb)
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ */  depends: /' | head -20
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; exit 1; }
files=$(dpkg -L keyward | while read -r f; do [ -f "$f" ] && echo "$f"; done)
echo "installed $(echo "$files" | wc -l) files"
for want in /usr/bin/keyward /usr/bin/keywardd /usr/include/keyward/encryptor.h \
            /usr/lib/systemd/system/keywardd.service /usr/lib/cmake/Keyward/KeywardConfig.cmake; do
  [ -e "$want" ] || { echo "missing after dpkg -i: $want" >&2; exit 1; }
done
grep -q "ExecStart=/usr/bin/keywardd" /usr/lib/systemd/system/keywardd.service ||
  { echo "the unit does not start /usr/bin/keywardd" >&2; exit 1; }
PATH=/usr/bin:/bin keyward --help >/dev/null
PATH=/usr/bin:/bin keywardd --help >/dev/null
# The cache is read whole first: `ldconfig -p | grep -q` fails under
# pipefail when grep stops early and ldconfig dies of SIGPIPE.
ldconfig -p >"$work/ld-cache.txt"
grep -q 'libkeyward\.so\.' "$work/ld-cache.txt" || { echo "ldconfig does not know libkeyward" >&2; exit 1; }
# Debian's python3 imports the package, which finds the library through
# the dynamic linker.
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import sys; sys.exit("/usr/lib/python3/dist-packages" not in sys.path)'; then
  [ "$(cd / && /usr/bin/python3 -c 'import keyward; print(keyward.library_version())')" = \
    "$(dpkg-deb -f "$deb" Version)" ] || { echo "python3 cannot import keyward" >&2; exit 1; }
  echo "python3 imports keyward $(dpkg-deb -f "$deb" Version)"
else
  echo "python import not checked: /usr/bin/python3 is not Debian's"
fi
[ "$(pkg-config --modversion keyward)" = "$(dpkg-deb -f "$deb" Version)" ] ||
  { echo "pkg-config keyward: $(pkg-config --modversion keyward 2>&1)" >&2; exit 1; }
dpkg -r keyward >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; exit 1; }
left=$(echo "$files" | while read -r f; do [ -e "$f" ] && echo "$f"; done || true)
[ -z "$left" ] || { echo "left behind by dpkg -r: $left" >&2; exit 1; }
ldconfig -p >"$work/ld-cache.txt"
if grep -q 'libkeyward\.so\.' "$work/ld-cache.txt"; then echo "ldconfig still lists libkeyward" >&2; exit 1; fi
echo "deb test: dpkg -i and dpkg -r clean"
