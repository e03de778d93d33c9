#!/usr/bin/env bash
# Exam-day benchmark: RESULTS results of VARS variables each travel from centre ORG-001 to
# central; compared with the baseline `tar | zstd | gpg` (sign+encrypt) then
# `gpg --decrypt | zstd -d | tar -x` plus `sqlite3 .import` of one CSV row per variable.
#
# usage: bench/exam-day.sh [RESULTS] [VARS] [RUNS]     (default 500 400 3)
# Disk: about 2 x the generated JSON for the inputs plus 5 x for one run (8 million
# variables: 3.4 GB of JSON, about 25 GB in all).
# Prints the median wall time of each step over RUNS runs and the peak RSS (KiB).
set -euo pipefail
RESULTS=${1:-500}; VARS=${2:-400}; RUNS=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cargo build --release -q
C="$here/target/release/courier"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 bench/gen_results.py "$RESULTS" "$VARS" "$work/results.jsonl" "$work/variables.csv"
echo "input: $RESULTS results x $VARS variables = $((RESULTS*VARS)) variables, $(du -h "$work/results.jsonl" | cut -f1) of JSON"

timed() { # label command... -> appends "seconds maxrss" to $work/t.<label>
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.tmp" "$@" >/dev/null 2>"$work/err.tmp" || { cat "$work/err.tmp"; exit 1; }
  cat "$work/time.tmp" >> "$work/t.$label"
}

for run in $(seq "$RUNS"); do
  d="$work/run$run"; mkdir -p "$d"
  "$C" --home "$d/central" init central --name Bench >/dev/null
  "$C" --home "$d/a" init center --org ORG-001 >/dev/null
  "$C" --home "$d/central" center add ORG-001 --label A --out "$d/enroll.json" >/dev/null
  fpr=$("$C" --home "$d/central" keys show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
  "$C" --home "$d/a" enroll "$d/enroll.json" --expect-fingerprint "$fpr" --out "$d/r" >/dev/null
  "$C" --home "$d/central" import "$d/r" >/dev/null
  "$C" --home "$d/central" load fixtures/data/central.jsonl >/dev/null
  "$C" --home "$d/central" export --to ORG-001 --out "$d/down" >/dev/null
  "$C" --home "$d/a" import "$d/down" >/dev/null

  timed ingest "$C" --home "$d/a" results add "$work/results.jsonl"
  timed export "$C" --home "$d/a" export --out "$d/up"
  timed import "$C" --home "$d/central" import "$d/up"
  timed csvexport "$C" --home "$d/central" results export --format csv --out "$d/out.csv"

  # Baseline: the same JSON through tar | zstd | gpg (sign + encrypt), then back and into SQLite.
  export GNUPGHOME="$d/gnupg"; mkdir -p -m 700 "$GNUPGHOME"
  "$C" --home "$d/a" keys export --secret --out "$d/a.sec" >/dev/null
  "$C" --home "$d/central" keys export --secret --out "$d/c.sec" >/dev/null
  gpg --batch --quiet --import "$d/a.sec" "$d/c.sec" 2>/dev/null
  afpr=$("$C" --home "$d/a" keys show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
  timed base_pack bash -c "tar -C '$work' -cf - results.jsonl | zstd -q -3 | gpg --batch --yes --trust-model always -q -u $afpr -r $fpr --sign --encrypt -o '$d/base.gpg'"
  mkdir -p "$d/unpacked"
  timed base_unpack bash -c "gpg --batch -q --decrypt '$d/base.gpg' 2>/dev/null | zstd -q -d | tar -C '$d/unpacked' -xf -"
  timed base_sqlite sqlite3 "$d/base.sqlite" "CREATE TABLE variables (execution_id TEXT, n INTEGER, call_id_test TEXT, call_id_item TEXT, test TEXT, item TEXT, data TEXT, PRIMARY KEY (execution_id, n));" ".mode csv" ".import '$work/variables.csv' variables"
  unset GNUPGHOME
  rm -rf "$d"   # a run at 8 million variables leaves about 17 GB behind
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk "{print \$$2}" "$work/t.$1"; }
printf "%-12s %10s %12s\n" step "median s" "max RSS KiB"
for s in ingest export import csvexport base_pack base_unpack base_sqlite; do
  printf "%-12s %10s %12s\n" "$s" "$(col $s 1 | median)" "$(col $s 2 | sort -n | tail -1)"
done
courier_total=$(paste -d+ <(col export 1 | median) <(col import 1 | median) | bc)
base_total=$(paste -d+ <(col base_pack 1 | median) <(col base_unpack 1 | median) <(col base_sqlite 1 | median) | bc)
echo "courier export+import: ${courier_total}s; baseline pack+unpack+sqlite: ${base_total}s; ratio $(echo "scale=2; $courier_total / $base_total" | bc)"
