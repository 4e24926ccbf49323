#!/usr/bin/env bash
# Builds the independent format-v1 decryptor (tests/interop/format_v1_decrypt.c,
# written from docs/format.md alone) and runs it on the frozen vectors: the
# messages of tests/vectors/format_v1 and the field values of
# tests/vectors/fields_v1 (docs/format.md §15).
# Run from anywhere; exits non-zero if the build or any vector fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cc -std=c11 -O1 -Wall -Wextra -o "$tmp/format_v1_decrypt" tests/interop/format_v1_decrypt.c -lcrypto

vectors=tests/vectors/format_v1
status=0
"$tmp/format_v1_decrypt" "$vectors/aes-256-gcm.json" || status=1
"$tmp/format_v1_decrypt" "$vectors/chacha20-poly1305.json" || status=1
"$tmp/format_v1_decrypt" "$vectors/negative.json" "$vectors/aes-256-gcm.json" || status=1
"$tmp/format_v1_decrypt" "$vectors/aes-256-gcm-ecdsa-p384.json" || status=1
"$tmp/format_v1_decrypt" "$vectors/negative-signed.json" "$vectors/aes-256-gcm.json" || status=1
"$tmp/format_v1_decrypt" tests/vectors/fields_v1/fields.json || status=1

if [ "$status" -ne 0 ]; then
    echo "interop format_v1 / fields_v1: FAILED" >&2
fi
exit "$status"
