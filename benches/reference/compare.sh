#!/usr/bin/env bash
# Side-by-side: `orb notification decrypt` vs the OpenSSL-backed Python reference on the
# same 1000-item collection of sealed ~2 KiB events (RSA-2048). Checks that both print the
# same bytes, then times each (hyperfine if installed, else 5 timed runs).
#
# usage: benches/reference/compare.sh [ITEMS] [EVENT_BYTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
items=${1:-1000}
size=${2:-2048}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -p orb -p orb-benches --bin orb --bin make-notification-collection -q
./target/release/make-notification-collection "$work" "$items" "$size"
python3 -c 'import cryptography; print("python cryptography", cryptography.__version__)'

orb_cmd="./target/release/orb notification decrypt --key bench=$work/key.pem $work/collection.json"
py_cmd="python3 benches/reference/decrypt_reference.py --key bench=$work/key.pem $work/collection.json"

$orb_cmd > "$work/orb.out"
$py_cmd > "$work/py.out"
cmp "$work/orb.out" "$work/py.out"
echo "outputs identical: $(wc -l < "$work/orb.out") lines"

if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs 10 -N "$orb_cmd" "$py_cmd"
else
  for name in orb py; do
    cmd=$orb_cmd; [ "$name" = py ] && cmd=$py_cmd
    best=999999
    for _ in 1 2 3 4 5; do
      start=$(date +%s%N); $cmd > /dev/null; end=$(date +%s%N)
      ms=$(( (end - start) / 1000000 )); [ "$ms" -lt "$best" ] && best=$ms
    done
    echo "$name: best of 5 = ${best} ms"
  done
fi
