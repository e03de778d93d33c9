#!/usr/bin/env bash
# Central on PostgreSQL with several import workers (issue 15): N centres' result bundles
# imported into PostgreSQL by 1, 2 and 4 workers at once, and into SQLite by one.
#
# usage: [COURIER=binary] [CENTRES=100] [RESULTS=200] [VARS=401] bench/pg-workers.sh [--workers "1 2 4"]
#
# Set-up (not timed): a throwaway PostgreSQL cluster (initdb + pg_ctl on a free port under a
# temporary folder, run as `nobody` when run as root; PostgreSQL's defaults but
# max_wal_size=4GB and shared_buffers=256MB, fsync on), a central with CENTRES enrolled
# centres ORG-001..., each eligible for the fixture delivery del-basic with test taker tt-001a;
# every centre applies its first data bundle, adds the same RESULTS x VARS results (bench's
# generator: each centre's results map to central ids of their own) and exports them (one
# file per centre at the default size limits).
# Timed, each on a fresh copy of that central:
#   sqlite      `courier import` of every centre's file by one process (SQLite central)
#   pg-N        the central copied into a new PostgreSQL database (`courier store migrate
#               --switch`, not timed), then N `courier import` processes at once, worker k
#               taking centres k, k+N, k+2N, ...; the wall time is from the start of the
#               first to the end of the last
# Checked after each: every import exited 0; central holds CENTRES x RESULTS results and
# CENTRES x RESULTS x VARS variables, each once; per centre, the newest sequence of each kind
# of file received and its results held are the same as the SQLite run's.
# Prints wall seconds, variables per second, the CPU seconds of courier's processes and of the
# database server (on one machine they share the cores), the store's size on disk and each
# worker's peak RSS. Prints wall seconds, variables per second and each worker's
# peak RSS.
set -euo pipefail
WORKERS="1 2 4"
while [ $# -gt 0 ]; do
  case $1 in
    --workers) WORKERS=$2; shift 2;;
    *) echo "usage: bench/pg-workers.sh [--workers \"1 2 4\"]" >&2; exit 2;;
  esac
done
N=${CENTRES:-100}; R=${RESULTS:-200}; V=${VARS:-401}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [ -n "${COURIER:-}" ]; then C=$COURIER; else cargo build --release -q; C="$here/target/release/courier"; fi

# PostgreSQL's programs: PG_BIN, else an initdb on the PATH (followed to its real folder),
# else Debian's newest /usr/lib/postgresql/*/bin.
pgbin=${PG_BIN:-}
if [ -z "$pgbin" ] && command -v initdb >/dev/null; then pgbin=$(dirname "$(readlink -f "$(command -v initdb)")"); fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/pg_ctl" ]; then pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); fi
[ -x "$pgbin/pg_ctl" ] && [ -x "$pgbin/psql" ] || { echo "PostgreSQL is not installed (no initdb/pg_ctl/psql); .ci/run installs Debian's postgresql" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pg-workers.XXXXXX")
pg="$work/pg"; mkdir -p "$pg"
as_pg=()
if [ "$(id -u)" = 0 ]; then chown nobody "$pg"; chmod 755 "$work"; as_pg=(runuser -u nobody --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
"${as_pg[@]}" "$pgbin/initdb" -D "$pg/data" -A trust -U courier -E UTF8 >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w start \
  -o "-p $port -k $pg -c listen_addresses=127.0.0.1 -c max_wal_size=4GB -c shared_buffers=256MB" >/dev/null
psql() { "$pgbin/psql" -h 127.0.0.1 -p "$port" -U courier -XAtq -v ON_ERROR_STOP=1 "$@"; }

s="$work/setup"; mkdir -p "$s/replies" "$s/up"
orgs=$(for i in $(seq "$N"); do printf 'ORG-%03d\n' "$i"; done)
python3 bench/gen_results.py "$R" "$V" "$s/results.jsonl"
. bench/lib.sh
# shellcheck disable=SC2086
enrolled_centres "$s" $orgs
python3 - "$N" fixtures/data/central.jsonl "$s/entities.jsonl" <<'PY'
import json, os, sys
n, fixture, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
records = [json.loads(l) for l in open(fixture)]
base = os.path.dirname(os.path.abspath(fixture))
for r in records:  # package paths are relative to the fixture's folder
    for k, v in r["properties"].items():
        if isinstance(v, str) and v.startswith("../qti/"):
            r["properties"][k] = os.path.normpath(os.path.join(base, v))
ns = "https://central.example/tao.rdf#"
org_key = "http://www.taotesting.com/ontologies/synchro.rdf#organisationId"
label = "http://www.w3.org/2000/01/rdf-schema#label"
centre_key = "http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileTestCenter"
centre = next(r for r in records if r["id"] == ns + "tc-org-002")
basic = next(r for r in records if r["id"] == ns + "elig-001-basic")
with open(out, "w") as f:
    for r in records:
        f.write(json.dumps(r) + "\n")
    for i in range(2, n + 1):
        if i >= 3:  # ORG-001 and ORG-002 have their test centre in the fixture
            c = json.loads(json.dumps(centre))
            c["id"] = ns + "tc-org-%03d" % i
            c["properties"][org_key] = "ORG-%03d" % i
            c["properties"][label] = "Test centre %03d" % i
            f.write(json.dumps(c) + "\n")
        e = json.loads(json.dumps(basic))
        e["id"] = ns + "elig-%03d-bench" % i
        e["properties"][centre_key] = ns + "tc-org-%03d" % i
        f.write(json.dumps(e) + "\n")
PY
"$C" --quiet --home "$s/central" load "$s/entities.jsonl" >/dev/null
"$C" --quiet --home "$s/central" export --to-all --out "$s/down" >/dev/null
for org in $orgs; do
  h="$s/c-$org"
  "$C" --quiet --home "$h" import "$s/down/$org-data-000001.courier" >/dev/null
  "$C" --quiet --home "$h" results add "$s/results.jsonl" >/dev/null
  mkdir -p "$s/up/$org"
  "$C" --quiet --home "$h" export --out "$s/up/$org" >/dev/null
  rm -rf "$h"  # its sealed copies are no longer needed: keeps the disk use down
done
files=$(ls "$s"/up/*/*.courier | wc -l)
echo "input: $N centres x $R results x $V variables = $((N * R * V)) variables in $files file(s) ($(du -sh "$s/up" | cut -f1)); PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'); load $(cut -d' ' -f1-3 /proc/loadavg)"

check() { # label results variables: the counts central holds
  local label=$1 got_r=$2 got_v=$3
  [ "$got_r" = $((N * R)) ] && [ "$got_v" = $((N * R * V)) ] \
    || { echo "$label: central holds $got_r results and $got_v variables, expected $((N * R)) and $((N * R * V))"; exit 1; }
}
report() { # label wall machine-cpu size workers-time-files...
  local label=$1 wall=$2 busy=$3 size=$4; shift 4
  printf "%-8s %8.2f s %10.0f %10.1f %10.1f %8s   %s\n" "$label" "$wall" \
    "$(echo "$N * $R * $V / $wall" | bc -l)" "$(cat "$@" | awk '{c += $3 + $4} END {print c}')" \
    "$busy" "$size" "$(for f in "$@"; do awk '{printf "%.0f ", $2/1024}' "$f"; done)"
}
now() { date +%s.%N; }
# CPU seconds of the database server: its postmaster, the children it reaped (the workers'
# backends, once they end) and those still running (checkpointer, WAL writer, ...).
# /proc/PID/stat's name field may hold spaces, so fields are counted after its ")".
busy() {
  local pm; pm=$(head -1 "$pg/data/postmaster.pid")
  { sed 's/.*) //' "/proc/$pm/stat" | awk '{print $12 + $13 + $14 + $15}'
    for c in $(pgrep -P "$pm"); do sed 's/.*) //' "/proc/$c/stat" 2>/dev/null | awk '{print $12 + $13}'; done
  } | awk -v hz="$(getconf CLK_TCK)" '{t += $1} END {printf "%.2f", t / hz}'
}

printf "%-8s %10s %10s %10s %10s %8s   %s\n" store wall "vars/s" "courier" "server" "store" "peak RSS per worker (MiB)"
printf "%-8s %10s %10s %10s %10s %8s\n" "" "" "" "CPU s" "CPU s" "size"
# One SQLite process.
d="$work/run"; rm -rf "$d"; mkdir -p "$d"; cp -r "$s/central" "$d/central"
t0=$(now)
/usr/bin/time -f "%e %M %U %S" -o "$d/w1.time" "$C" --quiet --home "$d/central" import "$s"/up/*/*.courier >/dev/null
t1=$(now)
check sqlite "$(sqlite3 "$d/central/store.sqlite" 'SELECT count(*) FROM central_results')" \
  "$(sqlite3 "$d/central/store.sqlite" 'SELECT count(*) FROM variables')"
report sqlite "$(echo "$t1 - $t0" | bc -l)" 0 \
  "$(du -sh "$d/central/store.sqlite" | cut -f1)" "$d/w1.time"
# Per centre: the newest sequence of each kind of file received, and the results held; the
# PostgreSQL runs must leave the same.
state="SELECT org_id, kind, MAX(seq), COUNT(*) FROM bundles WHERE direction = 'in' GROUP BY org_id, kind
       UNION ALL SELECT org_id, 'results held', COUNT(*), COUNT(DISTINCT central_id) FROM central_results GROUP BY org_id
       ORDER BY 1, 2"
sqlite3 "$d/central/store.sqlite" "$state" > "$work/state.sqlite"
[ "$(wc -l < "$work/state.sqlite")" = $((3 * N)) ] || { echo "sqlite: unexpected per-centre state:"; head "$work/state.sqlite"; exit 1; }

for w in $WORKERS; do
  db="bench_w$w"
  psql -d postgres -c "CREATE DATABASE $db" >/dev/null
  rm -rf "$d"; mkdir -p "$d"; cp -r "$s/central" "$d/central"
  "$C" --quiet --home "$d/central" store migrate --to "postgres://courier@127.0.0.1:$port/$db" --switch >/dev/null
  rm -f "$d/central/store.sqlite"
  i=0; for org in $orgs; do echo "$s/up/$org" >> "$d/list.$((i % w))"; i=$((i + 1)); done
  t0=$(now); b0=$(busy)
  pids=()
  for k in $(seq 0 $((w - 1))); do
    # shellcheck disable=SC2046
    /usr/bin/time -f "%e %M %U %S" -o "$d/w$k.time" "$C" --quiet --home "$d/central" import \
      $(sed 's|$|/*.courier|' "$d/list.$k" | xargs -I{} sh -c 'ls {}') >"$d/w$k.out" 2>"$d/w$k.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "pg-$w: a worker failed:"; cat "$d"/w*.err; exit 1; }; done
  t1=$(now); b1=$(busy)
  check "pg-$w" "$(psql -d "$db" -c 'SELECT count(*) FROM central_results')" \
    "$(psql -d "$db" -c 'SELECT count(*) FROM variables')"
  psql -d "$db" -c "$state" > "$d/state.pg"
  cmp -s "$work/state.sqlite" "$d/state.pg" \
    || { echo "pg-$w: the centres' sequences or result counts differ from SQLite's:"; diff "$work/state.sqlite" "$d/state.pg" | head; exit 1; }
  report "pg-$w" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$b1 - $b0" | bc -l)" \
    "$(psql -d "$db" -c "SELECT pg_size_pretty(pg_database_size('$db'))" | tr -d ' ')" "$d"/w*.time
  psql -d postgres -c "DROP DATABASE $db" >/dev/null
done
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
