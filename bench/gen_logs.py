#!/usr/bin/env python3
"""Generate synthetic delivery logs (rows of TAO's delivery_log table, JSON Lines).

usage: gen_logs.py RESULTS LOGS_PER_RESULT OUT.jsonl [CSV_OUT]

The logs belong to the executions bench/gen_results.py writes for RESULTS results (same
execution ids). With CSV_OUT, also writes one CSV row per log, the input of the
`sqlite3 .import` baseline.
"""
import csv, json, random, sys

n, per, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
csv_out = sys.argv[4] if len(sys.argv) > 4 else None
rnd = random.Random(7)
base = "https://central.example/tao.rdf#"
w = csv.writer(open(csv_out, "w", newline="")) if csv_out else None
events = ["TEST_STARTED", "ITEM_ANSWERED", "ITEM_ANSWERED", "ITEM_ANSWERED", "TEST_FINISHED"]
with open(out, "w") as f:
    row = 100000
    for i in range(n):
        exec_id = f"https://centre-001.example/tao.rdf#bench{i:08d}"
        for k in range(per):
            row += 1
            event = events[0] if k == 0 else events[-1] if k == per - 1 else events[1]
            data = {"itemId": f"{base}item-{k:04d}", "callId": f"{exec_id}.item-{k:04d}.0",
                    "timestamp": 1764144000 + 30 * k + rnd.randrange(30)}
            log = {"id": row, "delivery_execution_id": exec_id, "event_id": event, "data": data,
                   "created_at": f"0.{rnd.randrange(10**8):08d} {1764144000 + 30 * k}",
                   "created_by": f"{base}tt-001a"}
            line = json.dumps(log, separators=(",", ":"))
            f.write(line + "\n")
            if w:
                w.writerow([row, exec_id, event, log["created_at"], log["created_by"], line])
