#!/usr/bin/env bash
# Runs every example in examples/ against a dev keywardd, as `make test`
# does: the ten-line record example, the streaming file example (a 5 MiB
# file, compared byte for byte), and the error-handling example (each
# failure classified as the comment in it says).
#   tests/examples/run.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
cd "$root"
. "$root/bench/lib.sh"   # bench_scratch, dev_setup, start_keywardd
bench_scratch
dev_setup
start_keywardd
kw="$build/bin/keyward"
ex="$build/examples"
"$kw" --config "$work/dev/admin.yaml" key create payments/cards >/dev/null
"$kw" --config "$work/dev/admin.yaml" key create files/reports >/dev/null
echo "== encrypt_record"
"$ex/encrypt_record" "$work/dev/app.yaml" payments/cards
echo "== stream_file"
head -c $((5 << 20)) /dev/urandom >"$work/report.pdf"
"$ex/stream_file" "$work/dev/app.yaml" files/reports "$work/report.pdf" "$work/report.kw" \
  "$work/report.out"
cmp "$work/report.pdf" "$work/report.out"
# The CLI reads what the example wrote.
"$kw" --config "$work/dev/app.yaml" decrypt --context file=report.pdf -o "$work/report.cli" \
  "$work/report.kw"
cmp "$work/report.pdf" "$work/report.cli"
echo "== error_handling"
"$ex/error_handling" "$work/dev/app.yaml" payments/cards files/reports
echo "== fields/customers"
"$kw" --config "$work/dev/admin.yaml" key create customers >/dev/null
"$ex/customers" "$work/dev/app.yaml" examples/fields/customers.yaml "$work/shop.db"
# The CLI reads a row the example wrote, and the stored values are ciphertext.
"$kw" --config "$work/dev/app.yaml" fields get --schema examples/fields/customers.yaml \
  --db "sqlite:$work/shop.db" --table customers --id 1 | grep -q "ada@acme.example"
sqlite3 "$work/shop.db" "SELECT email FROM customers WHERE id = 1" | grep -q "^kw1\."
# Its blind indexes: built, then searched case-insensitively and by the last four digits.
fields=(--schema examples/fields/customers.yaml --db "sqlite:$work/shop.db" --table customers)
"$kw" --config "$work/dev/app.yaml" index rebuild "${fields[@]}" --rows 1e5 >/dev/null
"$kw" --config "$work/dev/app.yaml" fields find "${fields[@]}" --where email=ADA@ACME.EXAMPLE \
  --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert [x["id"] for x in r] == [1], r'
"$kw" --config "$work/dev/app.yaml" fields find "${fields[@]}" --where card_last4=1111 --json |
  python3 -c 'import json,sys; r=json.load(sys.stdin); assert [x["email"] for x in r] == ["ada@acme.example"], r'
echo "examples: ok"
