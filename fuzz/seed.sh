#!/bin/sh
# Copy seed inputs from fixtures/ into fuzz/corpus/<target>/ (not committed: corpora grow).
# Usage: fuzz/seed.sh   (from anywhere; needs the courier binary for the enrollment seed:
# it uses target/release/courier, built by `cargo build --release` at the root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fx="$root/fixtures"
c="$here/corpus"
mkdir -p "$c/bundle_open" "$c/payload" "$c/enrollment" "$c/records" "$c/package"

# bundle_open: every bundle vector, good and bad.
cp "$fx"/vectors/*.courier "$c/bundle_open/"

# package: every QTI package, valid and invalid.
cp "$fx"/qti/valid/*.zip "$fx"/qti/invalid/*.zip "$fx"/qti/*.zip "$c/package/"

# records: first byte picks the reader (see fuzz_targets/records.rs).
seed() { # seed SELECTOR FILE NAME
    { printf "\\$(printf %03o "$1")"; cat "$2"; } > "$c/records/$3"
}
seed 0 "$fx/data/central.jsonl" entities
seed 0 "$fx/data/update.jsonl" entities-update
for f in "$fx"/data/bad/*.jsonl; do seed 0 "$f" "entities-$(basename "$f" .jsonl)"; done
seed 1 "$fx/data/results/ORG-001-day1.jsonl" results
seed 1 "$fx/data/results/bad.jsonl" results-bad
seed 2 "$fx/data/logs/ORG-001-day1.jsonl" logs
seed 2 "$fx/data/logs/ORG-001-late.jsonl" logs-late
head -n 1 "$fx/data/results/ORG-001-day1.jsonl" > "$c/one-result.tmp"
seed 3 "$c/one-result.tmp" sealed-result
seed 131 "$c/one-result.tmp" sealed-result-small-limits
{ printf '['; head -n 3 "$fx/data/logs/ORG-001-day1.jsonl" | paste -sd, -; printf ']'; } > "$c/batch.tmp"
seed 4 "$c/batch.tmp" sealed-logs
rm -f "$c"/*.tmp
printf '\005{"bundles":[{"bundle_id":"x","status":"applied"}]}' > "$c/records/center-ack"
printf '\007{"results":[],"logs":[]}' > "$c/records/data-acks"

# payload: the tar archives inside the `ok_*` vectors would need the recipient's key to
# extract; small hand-made tars stand in (selector 0 = tar, then compressed by the target).
t=$(mktemp -d)
mkdir -p "$t/p"
head -n 3 "$fx/data/central.jsonl" > "$t/p/entities-0001.jsonl"
printf '{"results":[],"logs":[]}' > "$t/p/acks.json"
(cd "$t/p" && tar --format=ustar -cf "$t/a.tar" entities-0001.jsonl acks.json)
{ printf '\000'; cat "$t/a.tar"; } > "$c/payload/tar"
{ printf '\200'; cat "$t/a.tar"; } > "$c/payload/tar-small-size"
zstd -q -c "$t/a.tar" > "$t/a.zst" 2>/dev/null && { printf '\001'; cat "$t/a.zst"; } > "$c/payload/zstd" || true

# enrollment: a genuine enrollment file from a scratch central with the fixture key.
bin="$root/target/release/courier"
if [ -x "$bin" ]; then
    h="$t/central"
    "$bin" --home "$h" init central --name "Fuzz central" --key "$fx/vectors/keys/central.asc" >/dev/null
    "$bin" --home "$h" center add ORG-001 --label "Fuzz centre" --out "$c/enrollment/ORG-001.json" >/dev/null
else
    echo "seed.sh: $bin not built; no enrollment seed (run cargo build --release)" >&2
fi
rm -rf "$t"
for d in "$c"/*/; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done
