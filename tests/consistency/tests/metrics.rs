//! The filters' metrics (filters/logic/src/metrics.rs) against where they
//! are written down or used elsewhere: each filter's README table, the tag
//! rules of manifests/envoy/envoy.yaml and of the deployer's EnvoyProxy,
//! and the queries of the Grafana dashboard.

use std::collections::BTreeSet;

use consistency::read;
use edge_logic::metrics::{self, Family, Kind};

/// (filter, README holding its table, its families).
fn filters() -> [(&'static str, &'static str, &'static [Family]); 3] {
    [
        ("router", "filters/router/README.md", metrics::router::FAMILIES),
        ("add_response", "README.md", metrics::add::FAMILIES),
        ("health", "filters/health/README.md", metrics::health::FAMILIES),
    ]
}

/// The rows of a README's metrics table: (name, kind, label cell).
fn rows(readme: &str) -> Vec<(String, String, String)> {
    readme
        .lines()
        .filter(|l| l.starts_with(&format!("| `{}", metrics::PREFIX)))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string(), cells[3].to_string())
        })
        .collect()
}

/// The label cell a family's row must have: `label`: `v1`, `v2` (or
/// prose after the colon when the values come from the configuration).
fn label_ok(f: &Family, cell: &str) -> bool {
    match f.label {
        None => cell.is_empty(),
        Some((label, [])) => cell.starts_with(&format!("`{label}`: ")),
        Some((label, values)) => {
            let listed: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
            cell == format!("`{label}`: {}", listed.join(", "))
        }
    }
}

#[test]
fn each_readme_documents_exactly_its_filters_metrics() {
    let mut wrong = Vec::new();
    for (filter, path, families) in filters() {
        let text = read(path).unwrap();
        let rows = rows(&text);
        for f in families {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            match rows.iter().find(|(n, _, _)| n == f.name) {
                None => wrong.push(format!("{path}: no row for {}", f.name)),
                Some((_, k, l)) if k != kind || !label_ok(f, l) => {
                    wrong.push(format!("{path}: {} is a {kind} labelled {:?}, the row says {k} / {l}", f.name, f.label))
                }
                Some(_) => {}
            }
        }
        for (n, _, _) in &rows {
            if !families.iter().any(|f| f.name == n) {
                wrong.push(format!("{path}: {n} is documented but the {filter} filter does not define it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// (tag_name, regex) of a `stats_tags` list.
fn tags(list: &serde_yaml_ng::Value) -> BTreeSet<(String, String)> {
    list.as_sequence()
        .expect("stats_tags is a list")
        .iter()
        .map(|t| (t["tag_name"].as_str().unwrap().to_string(), t["regex"].as_str().unwrap().to_string()))
        .collect()
}

/// What every bootstrap must carry: one rule per label the filters use.
fn wanted() -> BTreeSet<(String, String)> {
    metrics::labels().into_iter().map(|l| (l.to_string(), metrics::tag_regex(l))).collect()
}

#[test]
fn envoy_yaml_makes_every_label_a_prometheus_label() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("manifests/envoy/envoy.yaml").unwrap()).unwrap();
    assert_eq!(tags(&doc["stats_config"]["stats_tags"]), wanted());
}

#[test]
fn envoy_gateways_bootstrap_gets_the_same_rules() {
    let text = read("manifests/kubernetes/envoy-gateway/envoy-proxy.yaml").unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let patches = doc["spec"]["bootstrap"]["jsonPatches"].as_sequence().expect("jsonPatches");
    let mut added = BTreeSet::new();
    for p in patches.iter().filter(|p| p["path"] == "/stats_config/stats_tags/-") {
        assert_eq!(p["op"], "add");
        added.extend(tags(&serde_yaml_ng::Value::Sequence(vec![p["value"].clone()])));
    }
    assert_eq!(added, wanted());
}

/// Every metric name a PromQL expression mentions.
fn names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find(metrics::PREFIX) {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_queries_only_defined_metrics_and_shows_them_all() {
    let dash: serde_json::Value = serde_json::from_str(&read("manifests/grafana/ipfs-edge.json").unwrap()).expect("valid JSON");
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    let used: BTreeSet<String> = all.iter().flat_map(|e| names_in(e)).collect();
    let defined: BTreeSet<String> = metrics::ALL.iter().flat_map(|fs| fs.iter()).map(|f| f.name.to_string()).collect();
    let unknown: Vec<&String> = used.difference(&defined).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics no filter defines: {unknown:?}");
    let missing: Vec<&String> = defined.difference(&used).collect();
    assert!(missing.is_empty(), "metrics not on the dashboard: {missing:?}");
    // A label a query groups by is one the metric has.
    for e in &all {
        if let Some(by) = e.split("by (").nth(1).and_then(|s| s.split(')').next()) {
            for name in names_in(e) {
                let f = metrics::ALL.iter().flat_map(|fs| fs.iter()).find(|f| f.name == name).unwrap();
                assert_eq!(f.label.map(|(l, _)| l), Some(by.trim()), "{e}");
            }
        }
    }
}

#[test]
fn a_dashboard_query_of_an_unknown_metric_is_caught() {
    assert_eq!(names_in("sum by (x) (rate(ipfs_edge_nope_total{job=~\"$job\"}[5m])) / ipfs_edge_a"), ["ipfs_edge_nope_total", "ipfs_edge_a"]);
}
