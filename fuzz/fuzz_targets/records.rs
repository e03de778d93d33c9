//! Any bytes as the JSON records courier reads from untrusted sources, each the way its
//! reader does it (the first byte picks which):
//!
//! 0. an entity file for `load` (array or JSON Lines, split by `limits::Records`, schema `entity`)
//! 1. a results file for `results add` (same split, schema `result`)
//! 2. a logs file for `logs add` (same split, schema `log`)
//! 3. a sealed result opened at central (`limits::scan`, parse, variables, schema `result`)
//! 4. a sealed log batch opened at central (`limits::scan`, array, batch size, schema `log`)
//! 5. a centre's acknowledgement `ack.json` (`limits::parse`, schema `center-ack`)
//! 6. a result or log metadata entry (`limits::parse`, schemas `result-meta`, `log-meta`)
//! 7. central's acknowledgements `acks.json` in a data bundle (parse, schema `data-acks`)
//! 8. data-bundle lines (`entities-*.jsonl`, `scope-*.jsonl`: schemas `data-entity`, `data-scope`)
#![no_main]

use std::io::BufRead;

use courier::limits::{self, Limits, Records, Split};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Small limits so that the fuzzer reaches them; the defaults are tried too.
fn limits(pick: u8) -> Limits {
    if pick & 0x80 == 0 {
        return Limits::default();
    }
    Limits {
        record_bytes: 4096,
        depth: 8,
        string_bytes: 256,
        values: 200,
        variables: 4,
        logs_per_batch: 4,
    }
}

fn file(data: &[u8], lim: Limits, schema: &str) {
    let mut records = Records::new(std::io::Cursor::new(data), lim);
    while let Ok(Some((_loc, split))) = records.next_record() {
        match split {
            Split::Record(bytes) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    let _ = courier::schema::check(schema, &v);
                }
            }
            Split::OverLimit(_) => {}
            Split::Broken(_) => break,
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let lim = limits(pick);
    match pick & 0x7f {
        0 => file(data, lim, "entity"),
        1 => file(data, lim, "result"),
        2 => file(data, lim, "log"),
        3 => {
            if limits::scan(data, &lim).is_err() {
                return;
            }
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                return;
            };
            if let Some(vars) = v.get("variables").and_then(Value::as_array) {
                if vars.len() as u64 > lim.variables {
                    return;
                }
            }
            let _ = courier::schema::check("result", &v);
        }
        4 => {
            if limits::scan(data, &lim).is_err() {
                return;
            }
            let Ok(logs) = serde_json::from_slice::<Vec<Value>>(data) else {
                return;
            };
            if logs.len() as u64 > lim.logs_per_batch {
                return;
            }
            for l in &logs {
                let _ = courier::schema::check("log", l);
            }
        }
        5 => {
            if let Ok(v) = limits::parse(data, &lim) {
                let _ = courier::schema::check("center-ack", &v);
            }
        }
        6 => {
            if let Ok(v) = limits::parse(data, &lim) {
                let _ = courier::schema::check("result-meta", &v);
                let _ = courier::schema::check("log-meta", &v);
            }
        }
        7 => {
            if let Ok(v) = serde_json::from_slice::<Value>(data) {
                let _ = courier::schema::check("data-acks", &v);
            }
        }
        _ => {
            for line in std::io::Cursor::new(data).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = courier::schema::check("data-entity", &v);
                    let _ = courier::schema::check("data-scope", &v);
                }
            }
        }
    }
});
