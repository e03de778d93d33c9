#!/usr/bin/env bash
# Exam-day round trip (issue 14): courier's whole up-sync against the raw pipeline over the
# same two files, in one run.
#
#   courier:  results add, logs add (centre), export (centre), import (central)
#   baseline: pack    tar (both files) | zstd -3 -T0 | gpg --sign --encrypt -z 0
#             unpack  gpg --decrypt | zstd -d | tar -x   (pipefail; gpg's status checked)
#             sqlite  sqlite3 .import of one CSV row per variable and one per log
#               "plain": tables without a key (the issue's baseline, used for the ratio)
#               "keyed": variables keyed (execution_id, n), logs keyed by id (shown beside)
# The baseline's CSV files are written by the generator before any timing: that is the
# baseline's floor (it never parses JSON), so the ratio is against the most favourable raw
# pipeline.
#
# usage: [COURIER=binary] bench/roundtrip.sh [--size small|large] [--runs N]
#   small: 1,000 results x 401 variables (401,000) + 50,000 logs     (default; ~1 GB disk)
#   large: 20,000 results x 401 variables (8,020,000) + 1,000,000 logs (~25 GB disk)
# Prints each step's median wall seconds, median CPU seconds (user+sys: less sensitive to other
# load on a shared machine) and peak RSS (max over runs, MiB), each side's total
# (sum of medians) and the ratio courier / baseline (plain).
set -euo pipefail
size=small; RUNS=5
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    *) echo "usage: bench/roundtrip.sh [--size small|large] [--runs N]" >&2; exit 2;;
  esac
done
case $size in
  small) RESULTS=1000; VARS=401; LOGS=50;;
  large) RESULTS=20000; VARS=401; LOGS=50; [ "$RUNS" -gt 3 ] && RUNS=3;;
  *) echo "--size is small or large" >&2; exit 2;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# COURIER=/path/to/courier benches that binary (e.g. a copy of an earlier build) instead of
# building this tree's.
if [ -n "${COURIER:-}" ]; then C=$COURIER; else cargo build --release -q; C="$here/target/release/courier"; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/roundtrip.XXXXXX"); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
python3 bench/gen_results.py "$RESULTS" "$VARS" "$work/in/results.jsonl" "$work/variables.csv"
python3 bench/gen_logs.py "$RESULTS" "$LOGS" "$work/in/logs.jsonl" "$work/logs.csv"
echo "input: $RESULTS results x $VARS variables = $((RESULTS*VARS)) variables ($(du -h "$work/in/results.jsonl" | cut -f1)), $((RESULTS*LOGS)) logs ($(du -h "$work/in/logs.jsonl" | cut -f1)); $RUNS runs; load $(cut -d' ' -f1-3 /proc/loadavg)"

# One set-up (keys, enrolment, the fixture down-sync), copied for every run.
s="$work/setup"; mkdir -p "$s"
"$C" --home "$s/central" init central --name Bench >/dev/null
"$C" --home "$s/a" init center --org ORG-001 >/dev/null
"$C" --home "$s/central" center add ORG-001 --label A --out "$s/enroll.json" >/dev/null
cfpr=$("$C" --home "$s/central" keys show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
afpr=$("$C" --home "$s/a" keys show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
"$C" --home "$s/a" enroll "$s/enroll.json" --expect-fingerprint "$cfpr" --out "$s/r" >/dev/null
"$C" --home "$s/central" import "$s/r" >/dev/null
"$C" --home "$s/central" load fixtures/data/central.jsonl >/dev/null
"$C" --home "$s/central" export --to ORG-001 --out "$s/down" >/dev/null
"$C" --home "$s/a" import "$s/down" >/dev/null
export GNUPGHOME="$s/gnupg"; mkdir -p -m 700 "$GNUPGHOME"
"$C" --home "$s/a" keys export --secret --out "$s/a.sec" >/dev/null
"$C" --home "$s/central" keys export --secret --out "$s/c.sec" >/dev/null
gpg --batch --quiet --import "$s/a.sec" "$s/c.sec" 2>/dev/null

timed() { # label command... -> appends "seconds maxrssKiB cpu-seconds" to $work/t.<label>
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.tmp" "$@" >/dev/null 2>"$work/err.tmp" \
    || { echo "step $label failed:"; cat "$work/err.tmp"; exit 1; }
  awk '{print $1, $2, $3 + $4}' "$work/time.tmp" >> "$work/t.$label"
}

cat > "$work/pack.sh" <<PACK
set -euo pipefail
tar -C '$work/in' -cf - results.jsonl logs.jsonl | zstd -q -3 -T0 \
  | gpg --batch --yes --trust-model always -q -z 0 -u $afpr -r $cfpr --sign --encrypt -o "\$1"
PACK
cat > "$work/unpack.sh" <<UNPACK
set -euo pipefail
gpg --batch -q --status-file "\$2.status" --decrypt "\$1" | zstd -q -d | tar -C "\$2" -xf -
grep -q '^\[GNUPG:\] DECRYPTION_OKAY' "\$2.status" && grep -q '^\[GNUPG:\] GOODSIG' "\$2.status" \
  || { echo "gpg: no good signature or decryption" >&2; exit 1; }
UNPACK
sql_plain="CREATE TABLE variables (execution_id TEXT, n INTEGER, call_id_test TEXT, call_id_item TEXT, test TEXT, item TEXT, data TEXT); CREATE TABLE logs (id INTEGER, execution_id TEXT, event_id TEXT, created_at TEXT, created_by TEXT, data TEXT);"
sql_keyed="CREATE TABLE variables (execution_id TEXT, n INTEGER, call_id_test TEXT, call_id_item TEXT, test TEXT, item TEXT, data TEXT, PRIMARY KEY (execution_id, n)); CREATE TABLE logs (id INTEGER PRIMARY KEY, execution_id TEXT, event_id TEXT, created_at TEXT, created_by TEXT, data TEXT);"

for run in $(seq "$RUNS"); do
  d="$work/run"; rm -rf "$d"; mkdir -p "$d"
  cp -r "$s/central" "$s/a" "$d/"
  timed results_add "$C" --quiet --home "$d/a" results add "$work/in/results.jsonl"
  timed logs_add "$C" --quiet --home "$d/a" logs add "$work/in/logs.jsonl"
  timed export "$C" --quiet --home "$d/a" export --out "$d/up"
  timed import "$C" --quiet --home "$d/central" import "$d/up"
  n=$(sqlite3 "$d/central/store.sqlite" "SELECT (SELECT count(*) FROM central_results) || ' results, ' || (SELECT count(*) FROM variables) || ' variables, ' || (SELECT count(*) FROM central_logs) || ' logs'")
  [ "$run" = 1 ] && echo "central holds $n after the import"
  rm -rf "$d/a" "$d/central" "$d/up"
  timed base_pack bash "$work/pack.sh" "$d/base.gpg"
  mkdir -p "$d/unpacked"
  timed base_unpack bash "$work/unpack.sh" "$d/base.gpg" "$d/unpacked"
  timed base_sqlite sqlite3 "$d/plain.sqlite" "$sql_plain" ".mode csv" ".import '$work/variables.csv' variables" ".import '$work/logs.csv' logs"
  timed base_sqlite_keyed sqlite3 "$d/keyed.sqlite" "$sql_keyed" ".mode csv" ".import '$work/variables.csv' variables" ".import '$work/logs.csv' logs"
done
unset GNUPGHOME

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med() { awk '{print $1}' "$work/t.$1" | median; }
cpu() { awk '{print $3}' "$work/t.$1" | median; }
peak() { awk '{print $2}' "$work/t.$1" | sort -n | tail -1 | awk '{printf "%.0f", $1/1024}'; }
printf "%-20s %9s %9s %9s   %s\n" step "median s" "cpu s" "peak MiB" "all runs (s)"
for st in results_add logs_add export import base_pack base_unpack base_sqlite base_sqlite_keyed; do
  printf "%-20s %9s %9s %9s   %s\n" "$st" "$(med $st)" "$(cpu $st)" "$(peak $st)" "$(awk '{printf "%s ", $1}' "$work/t.$st")"
done
c=$(echo "$(med results_add) + $(med logs_add) + $(med export) + $(med import)" | bc)
b=$(echo "$(med base_pack) + $(med base_unpack) + $(med base_sqlite)" | bc)
k=$(echo "$(med base_pack) + $(med base_unpack) + $(med base_sqlite_keyed)" | bc)
echo "courier round trip: ${c} s; baseline (plain tables): ${b} s; ratio $(echo "scale=2; $c / $b" | bc)"
echo "baseline with keyed tables: ${k} s; ratio $(echo "scale=2; $c / $k" | bc)"
cc=$(echo "$(cpu results_add) + $(cpu logs_add) + $(cpu export) + $(cpu import)" | bc)
cb=$(echo "$(cpu base_pack) + $(cpu base_unpack) + $(cpu base_sqlite)" | bc)
echo "cpu seconds (user+sys, medians): courier ${cc}, baseline (plain) ${cb}; ratio $(echo "scale=2; $cc / $cb" | bc)"
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
