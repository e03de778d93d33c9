#!/usr/bin/env python3
"""List the longest library functions: lines from `fn NAME` to the closing brace at the
same indentation, in src/ without the binary (src/bin/) and without #[cfg(test)] modules.
Usage: scripts/fn-lengths.py [SRC_DIR] [HOW_MANY]   (default: src 20)"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
most = int(sys.argv[2]) if len(sys.argv) > 2 else 20
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?fn\s+(\w+)")
rows = []
for p in sorted(root.rglob("*.rs")):
    if "bin" in p.relative_to(root).parts:
        continue
    lines = p.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            break  # test modules sit at the end of a file
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        end = next(
            (j for j in range(i, len(lines)) if lines[j] == m.group(1) + "}"), i
        )
        rows.append((end - i + 1, f"{p}:{i + 1}", m.group(5)))
for n, at, name in sorted(rows, reverse=True)[:most]:
    print(n, at, name)
