//! The hostile-request corpus (tests/corpus/hostile.jsonl, format in
//! tests/corpus/README.md) through the router logic under
//! tests/corpus/router-config.json. The Envoy end-to-end harness replays the
//! same file through a real Envoy. Embedded with include_str! so the test
//! also runs on wasm32, where there is no file system.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edge_logic::backend::Backend;
use edge_logic::router::{classify, Decision, Policy, Request};
use serde_json::Value;

const CORPUS: &str = include_str!("corpus/hostile.jsonl");
const CONFIG: &str = include_str!("corpus/router-config.json");

#[test]
fn hostile_corpus() {
    let policy = Policy::from_json(CONFIG.as_bytes()).expect("corpus configuration");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut refused = 0;
    for (n, line) in CORPUS.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        count += 1;
        let id = row["id"].as_str().expect("id");
        let method = row["method"].as_str().expect("method");
        let target = row["target"].as_str().expect("target");
        assert!(matches!(row["http"].as_str(), Some("1.0" | "1.1" | "2")), "{id}: http");
        if let Some(e) = row.get("envoy") {
            // Only refusals can be Envoy's own; the filter must refuse too.
            assert!(e.is_u64() && row["expect"].is_u64(), "{id}: envoy");
        }
        // Envoy hands filters lowercase header names.
        let headers: Vec<(String, String)> = row["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_ascii_lowercase(), h[1].as_str().unwrap().to_string()))
            .collect();
        let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let got = classify(&policy, &Request { method, path: target.as_bytes(), headers: &h });
        let ok = match (&row["expect"], &got) {
            (Value::String(b), Decision::Route { backend, .. }) => {
                Backend::from_header_value(b).expect("known backend") == *backend
            }
            (Value::Number(s), Decision::Refuse(r)) => {
                refused += 1;
                s.as_u64() == Some(r.status as u64)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{id}: {method} {target} expected {} got {got:?}", row["expect"]));
        }
    }
    assert!(count >= 300, "corpus has {count} requests, the issue asks for at least 300");
    assert!(refused * 2 > count, "most of a hostile corpus is refused ({refused} of {count})");
    assert!(failures.is_empty(), "{} of {count} wrong:\n{}", failures.len(), failures.join("\n"));
}
