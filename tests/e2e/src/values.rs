//! manifests/kubernetes/values.env, the one place for names, ports, versions
//! and limits: what the tests and benchmarks take from the deployment.

use std::collections::BTreeMap;

/// Every `KEY=value` of values.env.
pub fn all() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(crate::repo_root().join("manifests/kubernetes/values.env")).expect("values.env");
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

pub fn get(key: &str) -> String {
    all().remove(key).unwrap_or_else(|| panic!("{key} in values.env"))
}

/// A byte size given as a Kubernetes quantity (`32768`, `64Ki`, `1Mi`, `1Gi`).
pub fn bytes(key: &str) -> u64 {
    let v = get(key);
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let scale = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => panic!("{key}={v}: not a binary byte quantity"),
    };
    num.parse::<u64>().unwrap_or_else(|_| panic!("{key}={v}: not a number")) * scale
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_buffer_limit_reads_as_bytes() {
        // The deployment's flow-control window: a quantity Envoy Gateway takes.
        assert!(super::bytes("BUFFER_LIMIT") >= 32 * 1024);
    }
}
