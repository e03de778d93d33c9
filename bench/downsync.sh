#!/usr/bin/env bash
# Down-sync at scale (issue 14): central's data bundles for N enrolled centres (default 200),
# the first full export and the export after one change, with `export --to-all` (one
# process) and, for comparison, one `export --to ORG` process per centre.
#
# usage: [COURIER=binary] [CENTRES=200] bench/downsync.sh [--runs N]
# Set-up (not timed): central and N centres initialised and enrolled (N enrolment replies
# imported in one batch), then fixtures/data/central.jsonl plus one test centre record for
# each further organisation (ORG-003 ...; a copy of ORG-002's with its own id and
# organisation id) loaded at central; a copy of central kept; then every centre's first
# bundle exported, applied at the centre and acknowledged back (central imports the N
# acknowledgements). Timed, on copies of those centrals, per run:
#   first    export --to-all before any bundle was sent: every centre's first data bundle
#   change   load of one changed entity (ORG-001's test centre renamed; not timed), then
#            export --to-all: one centre has something new, N-1 have nothing
#   loop     the same change again, then one `export --to ORG` process per centre
# Prints each step's median wall seconds, median CPU seconds (user+sys) and peak RSS.
set -euo pipefail
RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2;;
    *) echo "usage: bench/downsync.sh [--runs N]" >&2; exit 2;;
  esac
done
N=${CENTRES:-200}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [ -n "${COURIER:-}" ]; then C=$COURIER; else cargo build --release -q; C="$here/target/release/courier"; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/downsync.XXXXXX"); [ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
s="$work/setup"; mkdir -p "$s/replies"
orgs=$(for i in $(seq "$N"); do printf 'ORG-%03d\n' "$i"; done)
. bench/lib.sh
# shellcheck disable=SC2086
enrolled_centres "$s" $orgs
python3 - "$N" fixtures/data/central.jsonl "$s/entities.jsonl" "$s/changed.jsonl" <<'PY'
import json, os, sys
n, fixture, out, changed = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
records = [json.loads(l) for l in open(fixture)]
base = os.path.dirname(os.path.abspath(fixture))
for r in records:  # package paths are relative to the fixture's folder
    for k, v in r["properties"].items():
        if isinstance(v, str) and v.startswith("../qti/"):
            r["properties"][k] = os.path.normpath(os.path.join(base, v))
centre = next(r for r in records if r["type"] == "test-center" and r["id"].endswith("tc-org-002"))
org_key = "http://www.taotesting.com/ontologies/synchro.rdf#organisationId"
label = "http://www.w3.org/2000/01/rdf-schema#label"
with open(out, "w") as f:
    for r in records:
        f.write(json.dumps(r) + "\n")
    for i in range(3, n + 1):
        r = json.loads(json.dumps(centre))
        r["id"] = "https://central.example/tao.rdf#tc-org-%03d" % i
        r["properties"][org_key] = "ORG-%03d" % i
        r["properties"][label] = "Test centre %03d" % i
        f.write(json.dumps(r) + "\n")
first = next(r for r in records if r["type"] == "test-center" and r["properties"][org_key] == "ORG-001")
for k in range(1, 3):  # two changes: one for --to-all, one for the per-centre loop
    first["properties"][label] = "Test centre Luxembourg-Kirchberg (renamed %d)" % k
    with open(changed + str(k), "w") as f:
        f.write(json.dumps(first) + "\n")
PY
# ORG-003 ... hold only their test centre (no eligibility): load warns once per centre.
"$C" --quiet --home "$s/central" load "$s/entities.jsonl" >/dev/null \
  2> >(grep -v 'no eligibility names its test centre' >&2)
cp -r "$s/central" "$s/central-first"
# Every centre applies its first bundle and acknowledges it, so that central sends only
# what changed since (unacknowledged changes are sent again).
"$C" --quiet --home "$s/central" export --to-all --out "$s/down" >/dev/null
for org in $orgs; do
  "$C" --quiet --home "$s/c-$org" import "$s/down/$org-data-000001.courier" >/dev/null
  "$C" --quiet --home "$s/c-$org" export --out "$s/up" >/dev/null
done
"$C" --quiet --home "$s/central" import "$s/up" >/dev/null
echo "$N centres enrolled; $(wc -l < "$s/entities.jsonl") entities loaded; $RUNS runs; load $(cut -d' ' -f1-3 /proc/loadavg)"

timed() { # label command... -> appends "seconds maxrssKiB cpu-seconds" to $work/t.<label>
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.tmp" "$@" >/dev/null 2>"$work/err.tmp" \
    || { echo "step $label failed:"; cat "$work/err.tmp"; exit 1; }
  awk '{print $1, $2, $3 + $4}' "$work/time.tmp" >> "$work/t.$label"
}
cat > "$work/loop.sh" <<LOOP
set -euo pipefail
for org in $(echo $orgs); do "$C" --quiet --home "\$1" export --to "\$org" --out "\$2" >/dev/null; done
LOOP

for run in $(seq "$RUNS"); do
  d="$work/run"; rm -rf "$d"; mkdir -p "$d"
  cp -r "$s/central-first" "$d/first"
  timed first "$C" --quiet --home "$d/first" export --to-all --out "$d/down1"
  [ "$run" = 1 ] && echo "first export: $(ls "$d/down1" | wc -l) file(s), $(du -sh "$d/down1" | cut -f1)"
  cp -r "$s/central" "$d/central"
  "$C" --quiet --home "$d/central" load "$s/changed.jsonl1" >/dev/null
  timed change "$C" --quiet --home "$d/central" export --to-all --out "$d/down2"
  [ "$run" = 1 ] && echo "after one change: $(ls "$d/down2" | wc -l) file(s)"
  "$C" --quiet --home "$d/central" load "$s/changed.jsonl2" >/dev/null
  timed loop bash "$work/loop.sh" "$d/central" "$d/down3"
  [ "$run" = 1 ] && echo "after one change, one process per centre: $(ls "$d/down3" | wc -l) file(s)"
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-28s %9s %9s %9s   %s\n" step "median s" "cpu s" "peak MiB" "all runs (s)"
for st in first change loop; do
  case $st in
    first) what="first export (--to-all)";; change) what="one change (--to-all)";; loop) what="one change ($N processes)";;
  esac
  printf "%-28s %9s %9s %9s   %s\n" "$what" "$(awk '{print $1}' "$work/t.$st" | median)" \
    "$(awk '{print $3}' "$work/t.$st" | median)" \
    "$(awk '{print $2}' "$work/t.$st" | sort -n | tail -1 | awk '{printf "%.0f", $1/1024}')" \
    "$(awk '{printf "%s ", $1}' "$work/t.$st")"
done
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
