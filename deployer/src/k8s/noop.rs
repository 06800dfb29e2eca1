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

/// The part of `live` that a managedFields `fieldsV1` set names: what its manager applied,
/// with the values the object holds now. A field named without sub-fields (a scalar, an
/// atomic list or map) is taken whole.
pub fn owned(live: &Value, fields: &Value) -> Value {
    let Value::Object(set) = fields else { return live.clone() };
    if set.keys().all(|k| k == ".") {
        return live.clone();
    }
    match live {
        Value::Object(m) => Value::Object(
            set.iter()
                .filter_map(|(key, sub)| {
                    let name = key.strip_prefix("f:")?;
                    Some((name.to_string(), owned(m.get(name)?, sub)))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| {
                    set.iter().find_map(|(key, sub)| {
                        let hit = if let Some(k) = key.strip_prefix("k:") {
                            let keys = serde_json::from_str::<Value>(k).ok().and_then(|k| k.as_object().cloned());
                            let matched = keys.as_ref().is_some_and(|keys| {
                                keys.iter().all(|(kk, kv)| it.get(kk).is_some_and(|x| contains(x, kv) && contains(kv, x)))
                            });
                            // The item's key fields identify it in the apply, listed or not.
                            return matched.then(|| {
                                let mut item = owned(it, sub);
                                if let (Value::Object(m), Some(keys)) = (&mut item, keys) {
                                    m.extend(keys);
                                }
                                item
                            });
                        } else if let Some(v) = key.strip_prefix("v:") {
                            serde_json::from_str::<Value>(v).is_ok_and(|v| &v == it)
                        } else if let Some(n) = key.strip_prefix("i:") {
                            n.parse::<usize>() == Ok(i)
                        } else {
                            false
                        };
                        hit.then(|| owned(it, sub))
                    })
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The object as `manager` last applied it, with the values it holds now (`owned` over that
/// manager's Apply entries), with the kind and name to apply it again; `None` if that
/// manager never applied it. Reapplying it changes nothing, so a command that changes one
/// field of it writes that field alone and keeps every other field and its ownership.
pub fn as_applied(live: &Value, manager: &str) -> Option<Value> {
    let entries = live["metadata"]["managedFields"].as_array()?;
    let mut out = Value::Object(Default::default());
    let mut any = false;
    for e in entries.iter().filter(|e| e["manager"] == manager && e["operation"] == "Apply" && e.get("subresource").is_none()) {
        merge(&mut out, owned(live, &e["fieldsV1"]));
        any = true;
    }
    if !any {
        return None;
    }
    for key in ["apiVersion", "kind"] {
        out[key] = live[key].clone();
    }
    out["metadata"]["name"] = live["metadata"]["name"].clone();
    if !live["metadata"]["namespace"].is_null() {
        out["metadata"]["namespace"] = live["metadata"]["namespace"].clone();
    }
    Some(out)
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
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
    fn as_applied_is_what_the_manager_owns_with_live_values() {
        let managed = json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:maxUnavailable": {},
            "f:ports": {"k:{\"port\":1,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}}}});
        let mut l = live(managed);
        l["metadata"]["namespace"] = json!("ns");
        l["metadata"]["labels"]["theirs"] = json!("y");
        let a = as_applied(&l, "ipfs-edge-deployer").unwrap();
        assert_eq!(
            a,
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "1"}},
                "spec": {"maxUnavailable": 1, "ports": [{"name": "p", "port": 1, "protocol": "TCP"}]}})
        );
        assert!(!would_change(&l, &a, "ipfs-edge-deployer"), "reapplying it is a no-op");
        assert!(as_applied(&l, "someone-else").is_none());
        // A keyed list: the items the manager names, not another manager's.
        let ports = json!([{"name": "p", "port": 1, "protocol": "TCP"}, {"name": "q", "port": 2, "protocol": "TCP"}]);
        let fields = json!({"k:{\"port\":1,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}});
        assert_eq!(owned(&ports, &fields), json!([{"name": "p", "port": 1, "protocol": "TCP"}]));
        // Atomic values whole: a list named without items, a leaf map.
        assert_eq!(owned(&json!({"w": [{"a": 1}, {"b": 2}], "x": 1}), &json!({"f:w": {}})), json!({"w": [{"a": 1}, {"b": 2}]}));
        assert_eq!(owned(&json!(["x", "y"]), &json!({"v:\"y\"": {}})), json!(["y"]));
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
