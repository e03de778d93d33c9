# Set-up shared by the benchmarks that need many enrolled centres (sourced, not run).

# enrolled_centres DIR ORG...: a central in DIR/central and one centre per ORG in DIR/c-ORG,
# each enrolled (the replies imported at central in one batch). Uses $C, the courier binary.
enrolled_centres() {
  local dir=$1 org cfpr; shift
  mkdir -p "$dir/replies"
  "$C" --home "$dir/central" init central --name Bench >/dev/null
  cfpr=$("$C" --home "$dir/central" keys show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
  for org in "$@"; do
    "$C" --home "$dir/c-$org" init center --org "$org" >/dev/null
    "$C" --home "$dir/central" center add "$org" --label "$org" --out "$dir/enroll-$org.json" >/dev/null
    "$C" --home "$dir/c-$org" enroll "$dir/enroll-$org.json" --expect-fingerprint "$cfpr" --out "$dir/replies" >/dev/null
  done
  "$C" --quiet --home "$dir/central" import "$dir/replies" >/dev/null
}
