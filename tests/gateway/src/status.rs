//! Policy and route statuses as Envoy Gateway reports them in standalone mode. There is no
//! API server to write them to: the File provider's status handler logs each one. Its log is
//! zap's console format: a line ending in "Got new status for KIND", the status as YAML on
//! the lines after it, then a line holding the fields as JSON (`key`: "namespace/name").
//! (A later update of the GatewayClass logs "failed to log status ... no status field": only
//! its first status is in the log.)

use serde_json::Value;

/// The newest status logged for `kind` `key` ("namespace/name"), as JSON.
pub fn latest(log: &str, kind: &str, key: &str) -> Option<Value> {
    let marker = format!("\tGot new status for {kind}");
    let lines: Vec<&str> = log.lines().collect();
    let mut found = None;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].ends_with(&marker) {
            let mut j = i + 1;
            while j < lines.len() && !lines[j].starts_with("\t{") {
                j += 1;
            }
            let fields: Value = lines.get(j).and_then(|l| serde_json::from_str(l.trim()).ok()).unwrap_or(Value::Null);
            if fields["key"].as_str() == Some(key) {
                if let Ok(v) = serde_yaml_ng::from_str::<Value>(&lines[i + 1..j].join("\n")) {
                    found = Some(v);
                }
            }
            i = j;
        }
        i += 1;
    }
    found
}

/// The conditions of a policy status for its first ancestor (`ancestors[0].conditions`), or
/// of a route for its first parent, as (type, status, reason, message).
pub fn conditions(status: &Value) -> Vec<(String, String, String, String)> {
    let list = status["ancestors"].get(0).or_else(|| status["parents"].get(0)).map(|a| &a["conditions"]).or(Some(&status["conditions"]));
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("type"), s("status"), s("reason"), s("message"))
        })
        .collect()
}

/// `type` is `True` in every ancestor/parent of the status (and there is at least one).
pub fn all_true(status: &Value, ty: &str) -> bool {
    let groups: Vec<&Value> = status["ancestors"]
        .as_array()
        .or(status["parents"].as_array())
        .map(|a| a.iter().map(|x| &x["conditions"]).collect())
        .unwrap_or_else(|| vec![&status["conditions"]]);
    !groups.is_empty()
        && groups.iter().all(|cs| cs.as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True")))
}
