//! Deciding, from the live object the deployer reads anyway, that an apply would change
//! nothing, so no write is sent. Besides saving a request per object on a rerun, this keeps
//! resourceVersions unchanged on servers that store defaults lazily (before 1.27 a no-op
//! apply still writes when the stored object lacks a default the server adds on read, e.g.
//! a CRD's `status` default).
//!
//! Skipping is safe only when server-side apply would be a no-op: every field the deployer
//! sets already has that value, and the deployer's managed fields name no field it no longer
//! sets (applying would remove that one).

use serde_json::Value;

/// Whether `live` already holds every field of `applied` with the same value. Lists must
/// have the same length (SSA replaces atomic lists and keyed lists are matched in order by
/// the renderer, which is deterministic).
pub fn contains(live: &Value, applied: &Value) -> bool {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => a.iter().all(|(k, av)| l.get(k).is_some_and(|lv| contains(lv, av))),
        (Value::Array(l), Value::Array(a)) => l.len() == a.len() && l.iter().zip(a).all(|(lv, av)| contains(lv, av)),
        (Value::Number(l), Value::Number(a)) => l.as_f64() == a.as_f64(),
        (l, a) => l == a,
    }
}

/// Whether every field in `fields` (a managedFields `fieldsV1` set) is present in `applied`.
pub fn covers(applied: &Value, fields: &Value) -> bool {
    let Value::Object(set) = fields else { return true };
    set.iter().all(|(key, sub)| {
        if key == "." {
            return true;
        }
        if let Some(name) = key.strip_prefix("f:") {
            return applied.get(name).is_some_and(|v| covers(v, sub));
        }
        let Value::Array(items) = applied else { return false };
        if let Some(k) = key.strip_prefix("k:") {
            let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else { return false };
            return items
                .iter()
                .find(|it| keys.iter().all(|(kk, kv)| it.get(kk).is_some_and(|x| contains(x, kv) && contains(kv, x))))
                .is_some_and(|it| covers(it, sub));
        }
        if let Some(v) = key.strip_prefix("v:") {
            let Ok(v) = serde_json::from_str::<Value>(v) else { return false };
            return items.iter().any(|it| it == &v);
        }
        if let Some(i) = key.strip_prefix("i:") {
            return i.parse::<usize>().ok().and_then(|i| items.get(i)).is_some_and(|it| covers(it, sub));
        }
        false
    })
}

/// Whether applying `applied` as `manager` would change `live` (a full object as served).
pub fn would_change(live: &Value, applied: &Value, manager: &str) -> bool {
    // apiVersion and kind are those asked for (a list's items may come without them).
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    if !contains(&strip(live), &strip(applied)) {
        return true;
    }
    let entries = live["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    let ours: Vec<&Value> = entries.iter().filter(|e| e["manager"] == manager && e["operation"] == "Apply").collect();
    // Not applied by us yet (created by hand, or by another tool): the apply takes ownership.
    if ours.is_empty() {
        return true;
    }
    !ours.iter().all(|e| covers(applied, &e["fieldsV1"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(managed: Value) -> Value {
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "1"},
                "managedFields": [{"manager": "ipfs-edge-deployer", "operation": "Apply", "fieldsV1": managed}]},
            "spec": {"maxUnavailable": 1, "ports": [{"name": "p", "port": 1, "protocol": "TCP"}], "defaulted": true},
            "status": {"x": 1}
        })
    }

    #[test]
    fn same_fields_and_values_is_a_no_op() {
        let applied = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"maxUnavailable": 1.0, "ports": [{"name": "p", "port": 1, "protocol": "TCP"}]}});
        let managed = json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:maxUnavailable": {},
            "f:ports": {"k:{\"port\":1,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}}}});
        assert!(!would_change(&live(managed.clone()), &applied, "ipfs-edge-deployer"));
        // Another manager's apply is not ours: applying takes ownership.
        assert!(would_change(&live(managed.clone()), &applied, "someone-else"));
        // A changed value.
        let mut other = applied.clone();
        other["spec"]["maxUnavailable"] = json!(2);
        assert!(would_change(&live(managed.clone()), &other, "ipfs-edge-deployer"));
        // A list of another length.
        other = applied.clone();
        other["spec"]["ports"] = json!([]);
        assert!(would_change(&live(managed), &other, "ipfs-edge-deployer"));
    }

    #[test]
    fn a_field_no_longer_set_must_be_removed_by_applying() {
        let applied = json!({"metadata": {"name": "a"}, "spec": {"maxUnavailable": 1}});
        let managed = json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:maxUnavailable": {}}});
        assert!(would_change(&live(managed), &applied, "ipfs-edge-deployer"));
        let managed = json!({"f:spec": {"f:ports": {"k:{\"port\":2,\"protocol\":\"TCP\"}": {}}}});
        let with_port = json!({"spec": {"ports": [{"port": 1, "protocol": "TCP"}]}});
        assert!(!covers(&with_port, &managed));
        assert!(covers(&json!({"a": ["x"]}), &json!({"f:a": {"v:\"x\"": {}}})));
        assert!(!covers(&json!({"a": ["y"]}), &json!({"f:a": {"v:\"x\"": {}}})));
    }
}
