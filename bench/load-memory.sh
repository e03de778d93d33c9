#!/usr/bin/env bash
# `courier load` of N generated test takers into a fresh central: wall time and peak RSS.
#
# usage: bench/load-memory.sh [N...]        (default 100000 1000000)
#        C=/path/to/courier bench/load-memory.sh ...   (another build, e.g. an older commit's)
# Prints "N records: SECONDS s PEAK_KB KB" per size, then loads the same file a second time
# (every record unchanged) the same way.
# Measured (2 cores shared with other builds, load average about 14; 100,000 test takers,
# 115 MiB of JSON Lines): before streaming (commit ec77018) 29.4 s, 404,120 KB peak RSS;
# streaming (records written into the transaction as read) 35.7 s, 65,268 KB. Wall times vary
# by tens of percent here with the other builds; peak RSS does not.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [ -z "${C:-}" ]; then cargo build --release -q; C="$here/target/release/courier"; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for n in "${@:-100000 1000000}"; do
  for size in $n; do
    python3 bench/gen_entities.py "$size" "$work/entities.jsonl"
    rm -rf "$work/central"
    "$C" --home "$work/central" init central --name Bench >/dev/null
    for pass in first again; do
      /usr/bin/time -f "%e s %M KB" -o "$work/time" "$C" --home "$work/central" load "$work/entities.jsonl" >/dev/null
      echo "$size records ($pass, $(du -h "$work/entities.jsonl" | cut -f1)): $(cat "$work/time")"
    done
  done
done
