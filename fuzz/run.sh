#!/bin/sh
# Run every fuzz target for SECONDS each (default 60) and print what each found.
# Usage: fuzz/run.sh SECONDS [TARGET...]
# Needs cargo-fuzz and the nightly toolchain (see README.md). Seeds come from fuzz/seed.sh
# (run here when a corpus is missing). Findings land in fuzz/artifacts/<target>/; the log of
# each run in fuzz/logs/<target>.log. Exit status 1 when anything was found.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
secs=${1:-60}
shift 2>/dev/null || true
targets=${*:-"bundle_open payload enrollment records package"}
[ -d corpus ] || ./seed.sh
mkdir -p logs artifacts
cargo +nightly fuzz build >/dev/null 2>logs/build.log || { echo "build failed: see fuzz/logs/build.log"; exit 2; }
found=0
printf '%-12s %8s %12s %9s  %s\n' target seconds executions exec/s findings
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    touch "logs/.start-$t"
    # -timeout: one input taking longer than 10 s is a hang; -rss_limit_mb: memory is bounded.
    cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"logs/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -n 1)
    new=$(find "artifacts/$t" -type f -newer "logs/.start-$t")
    if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        found=1
        what=$(grep -v Running "logs/$t.log" | grep -m1 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|out-of-memory|timeout' | cut -c1-160)
        printf '%-12s %8s %12s %9s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "FOUND (exit $rc): ${what:-see logs/$t.log}"
        for f in $new; do echo "             fuzz/$f"; done
    else
        printf '%-12s %8s %12s %9s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "nothing"
    fi
done
exit $found
