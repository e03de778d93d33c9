#!/usr/bin/env python3
"""Generate synthetic exam-day results in TAO's wire shape (JSON Lines).

usage: gen_results.py RESULTS VARIABLES_PER_RESULT OUT.jsonl [CSV_OUT]

Every result names the fixture delivery del-basic and test taker tt-001a (held by centre
ORG-001 after the fixture down-sync). With CSV_OUT, also writes one CSV row per variable,
the input of the `sqlite3 .import` baseline.
"""
import base64, csv, json, random, sys

n, per, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
csv_out = sys.argv[4] if len(sys.argv) > 4 else None
rnd = random.Random(42)
base = "https://central.example/tao.rdf#"
w = csv.writer(open(csv_out, "w", newline="")) if csv_out else None
with open(out, "w") as f:
    for i in range(n):
        exec_id = f"https://centre-001.example/tao.rdf#bench{i:08d}"
        variables = []
        for v in range(per):
            item = f"{base}item-{v // 4:04d}"
            kind = v % 4
            if kind == 0:
                data = {"type": "responseVariable", "identifier": "RESPONSE", "cardinality": "single",
                        "baseType": "identifier", "epoch": f"0.{rnd.randrange(10**8):08d} 1764144100",
                        "candidateResponse": base64.b64encode(f"choice_{rnd.randrange(5)}".encode()).decode(),
                        "correctResponse": rnd.random() < 0.5}
            elif kind == 1:
                data = {"type": "outcomeVariable", "identifier": "SCORE", "cardinality": "single",
                        "baseType": "float", "epoch": f"0.{rnd.randrange(10**8):08d} 1764144100",
                        "value": base64.b64encode(str(rnd.randrange(2)).encode()).decode(),
                        "normalMinimum": "0", "normalMaximum": "1"}
            elif kind == 2:
                data = {"type": "traceVariable", "identifier": "duration", "cardinality": "single",
                        "baseType": "duration", "epoch": f"0.{rnd.randrange(10**8):08d} 1764144100",
                        "trace": base64.b64encode(f"PT{rnd.randrange(300)}S".encode()).decode()}
            else:
                data = {"type": "outcomeVariable", "identifier": "completionStatus", "cardinality": "single",
                        "baseType": "identifier", "epoch": f"0.{rnd.randrange(10**8):08d} 1764144100",
                        "value": base64.b64encode(b"completed").decode()}
            var = {"callIdTest": f"{exec_id}.test", "callIdItem": f"{exec_id}.{item}",
                   "test": f"{base}test-basic", "item": item, "data": data}
            variables.append(var)
            if w:
                w.writerow([exec_id, v, var["callIdTest"], var["callIdItem"], var["test"], var["item"], json.dumps(var)])
        result = {"deliveryId": f"{base}del-basic", "deliveryExecutionId": exec_id,
                  "details": {"identifier": exec_id, "label": "Bench", "test-taker": f"{base}tt-001a",
                              "starttime": "0.12345600 1764144000", "finishtime": "0.54321000 1764147600",
                              "state": "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusFinished"},
                  "variables": variables}
        f.write(json.dumps(result, separators=(",", ":")) + "\n")
