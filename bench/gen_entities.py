#!/usr/bin/env python3
"""Generate a large entity file for `courier load` (JSON Lines, courier's own shape).

usage: gen_entities.py TEST_TAKERS OUT.jsonl

Writes ORG-001's test centre and TEST_TAKERS test takers, each a copy of the first test
centre / test taker of fixtures/data/central.jsonl with its own id, login, label and names
(no delivery, so no package is needed). bench/load-memory.sh runs `load` on it.
"""
import json, os, sys

n, out = int(sys.argv[1]), sys.argv[2]
fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data", "central.jsonl")
first = {}
for line in open(fixture):
    record = json.loads(line)
    first.setdefault(record["type"], record)
generis = "http://www.tao.lu/Ontologies/generis.rdf#"
label = "http://www.w3.org/2000/01/rdf-schema#label"
with open(out, "w") as f:
    f.write(json.dumps(first["test-center"]) + "\n")
    taker = first["test-taker"]
    for i in range(n):
        props = dict(taker["properties"])
        props[label] = f"Bench taker {i}"
        props[generis + "login"] = f"bench{i:08d}"
        props[generis + "userFirstName"] = "Bench"
        props[generis + "userLastName"] = f"Taker {i}"
        record = {"type": "test-taker", "id": f"https://central.example/tao.rdf#tt-bench-{i:08d}",
                  "properties": props}
        f.write(json.dumps(record, separators=(",", ":")) + "\n")
