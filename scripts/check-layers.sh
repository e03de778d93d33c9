#!/usr/bin/env bash
# Fail when library modules import each other in a circle.
#
# Reads every `crate::NAME` on the non-comment lines of src/ (the binary, src/main.rs, is
# left out: nothing imports it), takes the top-level module of each file (src/store/x.rs is
# `store`), and computes which module reaches which; a module that reaches itself is in a
# cycle. The intended direction is in docs/DESIGN.md ("Layers").
# Usage: scripts/check-layers.sh [SRC_DIR]   (exit 0: no cycle; 1: cycles listed)
set -euo pipefail
src="${1:-$(dirname "$0")/../src}"

find "$src" -name '*.rs' ! -path "$src/main.rs" ! -path "$src/bin/*" | sort | while read -r f; do
  rel="${f#"$src"/}"
  mod="${rel%%/*}"; mod="${mod%.rs}"
  [ "$mod" = lib ] && continue
  grep -v '^[[:space:]]*//' "$f" | grep -o 'crate::[a-z_][a-z0-9_]*' | sed "s/^crate::/$mod /" || true
done | sort -u | awk '
  $1 != $2 { edge[$1 SUBSEP $2] = 1; mods[$1] = 1; mods[$2] = 1 }
  END {
    # transitive closure (Floyd-Warshall): a few dozen modules
    for (k in mods) for (i in mods) if ((i SUBSEP k) in edge)
      for (j in mods) if ((k SUBSEP j) in edge) edge[i SUBSEP j] = 1
    bad = 0
    for (i in mods) if ((i SUBSEP i) in edge) {
      line = ""
      for (j in mods) if (j != i && (i SUBSEP j) in edge && (j SUBSEP i) in edge) line = line " " j
      print "cycle: " i " reaches itself (through" line ")"
      bad = 1
    }
    n = 0; for (m in mods) n++
    if (!bad) print "no import cycle among " n " modules"
    exit bad
  }'
