#!/usr/bin/env bash
# Hostile-input memory benchmark: peak RSS of imports (and `results add` / `logs add`) fed
# the hostile and limit-sized inputs of tests/limits.rs, for this build and, optionally,
# another courier binary (e.g. one built from an older commit) replaying the same inputs.
#
# usage: bench/hostile-memory.sh [OTHER_COURIER_BINARY]
# The tests craft the inputs (a dishonest enrolled centre signs and seals them with its own
# keys, tests/common.rs Forger) and keep each case's home and files under a temporary folder
# (COURIER_KEEP_HOSTILE); each case is then replayed on a fresh copy of its home under
# /usr/bin/time. Disk: about 400 MB. Prints the exit code and peak RSS (KiB) per case.
set -euo pipefail
other=${1:-}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cargo build --release -q
keep=$(mktemp -d); trap 'rm -rf "$keep"' EXIT
COURIER_KEEP_HOSTILE="$keep" cargo test --release -q --test integration -- limits:: >/dev/null 2>&1 \
  || { echo "tests/limits.rs failed; run: cargo test --release --test integration -- limits::"; exit 1; }

replay() { # binary case -> "exit peakKiB seconds"
  local bin=$1 case=$2 run="$keep/$2/run"
  rm -rf "$run"; cp -r "$keep/$case/home" "$run"
  # Default limits only (an older build refuses the unknown `settings.limits`).
  python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c.get("settings",{}).pop("limits",None); json.dump(c,open(p,"w"))' "$run/courier.json"
  mapfile -t args < "$keep/$case/args"
  local a=() x
  for x in "${args[@]}"; do
    if [ -f "$keep/$case/$x" ]; then a+=("$keep/$case/$x"); else a+=("$x"); fi
  done
  set +e
  /usr/bin/time -f "%M %e" -o "$keep/time" "$bin" --home "$run" "${a[@]}" >/dev/null 2>&1
  local code=$?
  set -e
  echo "$code $(tail -n 1 "$keep/time")"
}

printf "%-24s %6s %12s %8s" case exit "peak KiB" seconds
[ -n "$other" ] && printf " | %6s %12s %8s" exit "peak KiB" seconds
echo
for d in "$keep"/*/; do
  c=$(basename "$d")
  printf "%-24s %6s %12s %8s" "$c" $(replay "$here/target/release/courier" "$c")
  [ -n "$other" ] && printf " | %6s %12s %8s" $(replay "$other" "$c")
  echo
done
