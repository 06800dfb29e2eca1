//! The changes tests make to a repository Envoy configuration, made on its
//! YAML structure (clusters, filters and routes found by name), so that a
//! reworded comment or a reformatted line in the manifest breaks nothing,
//! and an edit whose target is gone fails loudly.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

/// One change to the configuration.
#[derive(Debug, Clone)]
pub enum Patch {
    /// The port of every endpoint of cluster `name`.
    ClusterPort(&'static str, u16),
    /// The plugin configuration (`configuration.value`) of Wasm filter `name`.
    FilterConfig(&'static str, String),
    /// The `.wasm` file of Wasm filter `name`.
    FilterCode(&'static str, String),
    /// A key of the HTTP connection manager, set to a value given as YAML
    /// (`normalize_path`, `true`).
    Manager(&'static str, &'static str),
    /// The unmarked routes (without a header match: where every request
    /// starts and an unmarked one stays) sent to cluster `name` (no route
    /// timeout) instead of refused; each keeps the filters it turns on.
    UnmarkedTo(&'static str),
    /// A route (YAML) put just before the first unmarked one: what a
    /// platform attaches beside the project's routes.
    RouteBeforeUnmarked(String),
    /// A copy of the unmarked route for exact path `from` (with the filters
    /// it turns on) for exact path `to`, just after it: what a configured
    /// health path needs (the manifest has one for `/`).
    ExactRouteLike(&'static str, String),
    /// Wasm filter `name` on every route (not `disabled`), as a filter on the
    /// whole listener: the benchmarks' floors measure a filter where it runs
    /// on requests it has nothing to do with.
    FilterEverywhere(&'static str),
    /// `per_connection_buffer_limit_bytes` of the listener and of every
    /// cluster: the flow-control window, as Envoy Gateway sets it from a
    /// ClientTrafficPolicy's and a BackendTrafficPolicy's `bufferLimit`.
    BufferLimit(u64),
}

/// `text` with the listener and admin ports set to 0 (the OS picks), the
/// Wasm filters not named in `keep` removed (`"*"` keeps all), each filter's
/// `.wasm` taken from `wasm_dir`, then `patches` applied in order.
pub fn edit(text: &str, patches: &[Patch], keep: &[&str], wasm_dir: &Path) -> Result<String, String> {
    let mut doc: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    for listener in seq_mut(&mut doc, &["static_resources", "listeners"])? {
        set(listener, &["address", "socket_address", "port_value"], Value::from(0))?;
    }
    set(&mut doc, &["admin", "address", "socket_address", "port_value"], Value::from(0))?;
    edit_doc(&mut doc, patches, keep, wasm_dir)?;
    serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())
}

/// `text` on its own ports (as shipped: `./x run`), with each filter's
/// `.wasm` taken from `wasm_dir` and `patches` applied in order.
pub fn patch(text: &str, patches: &[Patch], wasm_dir: &Path) -> Result<String, String> {
    let mut doc: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    edit_doc(&mut doc, patches, &["*"], wasm_dir)?;
    serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())
}

fn edit_doc(doc: &mut Value, patches: &[Patch], keep: &[&str], wasm_dir: &Path) -> Result<(), String> {
    let filters = seq_mut(manager(doc)?, &["http_filters"])?;
    let mut removed = Vec::new();
    filters.retain(|f| {
        let kept = !is_wasm(f) || keep.contains(&"*") || keep.contains(&name_of(f));
        if !kept {
            removed.push(name_of(f).to_string());
        }
        kept
    });
    // A route naming a filter that is gone would be refused by Envoy.
    for r in routes(doc)? {
        if let Some(per) = r.get_mut("typed_per_filter_config").and_then(Value::as_mapping_mut) {
            per.retain(|k, _| !removed.iter().any(|n| k.as_str() == Some(n)));
            if per.is_empty() {
                r.as_mapping_mut().ok_or("route is not a mapping")?.remove("typed_per_filter_config");
            }
        }
    }
    let filters = seq_mut(manager(doc)?, &["http_filters"])?;
    for f in filters.iter_mut().filter(|f| is_wasm(f)) {
        let path = ["typed_config", "config", "vm_config", "code", "local", "filename"];
        let file = get(f, &path).and_then(Value::as_str).ok_or("a Wasm filter without code.local.filename")?;
        let name = Path::new(file).file_name().ok_or("a Wasm filename without a file name")?;
        let moved = wasm_dir.join(name).display().to_string();
        set(f, &path, Value::from(moved))?;
    }
    for p in patches {
        apply(doc, p).map_err(|e| format!("{p:?}: {e}"))?;
    }
    Ok(())
}

fn apply(doc: &mut Value, p: &Patch) -> Result<(), String> {
    match p {
        Patch::ClusterPort(name, port) => {
            let cluster = named(seq_mut(doc, &["static_resources", "clusters"])?, name)?;
            let endpoints = seq_mut(cluster, &["load_assignment", "endpoints"])?;
            let mut n = 0;
            for e in endpoints {
                for lb in seq_mut(e, &["lb_endpoints"])? {
                    set(lb, &["endpoint", "address", "socket_address", "port_value"], Value::from(*port))?;
                    n += 1;
                }
            }
            (n > 0).then_some(()).ok_or_else(|| "cluster has no endpoint".to_string())
        }
        Patch::FilterConfig(name, json) => {
            let f = wasm_filter(doc, name)?;
            set(f, &["typed_config", "config", "configuration", "value"], Value::from(json.as_str()))?;
            // The native read routes follow the router's policy, as the deployer renders them;
            // a configuration the router refuses leaves them as they are.
            match edge_logic::router::Policy::from_json(json.as_bytes()) {
                Ok(policy) if *name == "router" => native_reads(doc, edge_logic::router::native_read::native_reads(&policy)),
                _ => Ok(()),
            }
        }
        Patch::FilterCode(name, file) => {
            let f = wasm_filter(doc, name)?;
            set(f, &["typed_config", "config", "vm_config", "code", "local", "filename"], Value::from(file.as_str()))
        }
        Patch::Manager(key, yaml) => {
            let v: Value = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
            let m = manager(doc)?.as_mapping_mut().ok_or("manager is not a mapping")?;
            m.insert(Value::from(*key), v);
            Ok(())
        }
        Patch::UnmarkedTo(cluster) => {
            check_unmarked(doc)?;
            for r in routes(doc)?.iter_mut().filter(|r| !marked(r)) {
                let r = r.as_mapping_mut().ok_or("route is not a mapping")?;
                r.remove("direct_response");
                r.remove("response_headers_to_add");
                let mut route = Mapping::new();
                route.insert("cluster".into(), Value::from(*cluster));
                route.insert("timeout".into(), Value::from("0s"));
                r.insert("route".into(), Value::Mapping(route));
            }
            Ok(())
        }
        Patch::RouteBeforeUnmarked(yaml) => {
            let route: Value = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
            check_unmarked(doc)?;
            let routes = routes(doc)?;
            let at = routes.iter().position(|r| !marked(r)).ok_or("no unmarked route")?;
            routes.insert(at, route);
            Ok(())
        }
        Patch::ExactRouteLike(from, to) => {
            let routes = routes(doc)?;
            let at = routes
                .iter()
                .position(|r| !marked(r) && r.get("match").and_then(|m| m.get("path")).and_then(Value::as_str) == Some(*from))
                .ok_or_else(|| format!("no unmarked route for path {from}"))?;
            let mut copy = routes[at].clone();
            set(&mut copy, &["match", "path"], Value::from(to.as_str()))?;
            routes.insert(at + 1, copy);
            Ok(())
        }
        Patch::FilterEverywhere(name) => {
            let f = wasm_filter(doc, name)?.as_mapping_mut().ok_or("filter is not a mapping")?;
            f.remove("disabled").map(|_| ()).ok_or_else(|| "the filter is on every route already".to_string())
        }
        Patch::BufferLimit(bytes) => {
            let key = ["per_connection_buffer_limit_bytes"];
            for l in seq_mut(doc, &["static_resources", "listeners"])? {
                set(l, &key, Value::from(*bytes))?;
            }
            for c in seq_mut(doc, &["static_resources", "clusters"])? {
                set(c, &key, Value::from(*bytes))?;
            }
            Ok(())
        }
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn get_mut<'a>(v: &'a mut Value, path: &[&str]) -> Result<&'a mut Value, String> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k).ok_or_else(|| format!("no `{}`", path.join("."))))
}

/// Sets an existing key: a path that is gone is an error, not a new key.
fn set(v: &mut Value, path: &[&str], to: Value) -> Result<(), String> {
    *get_mut(v, path)? = to;
    Ok(())
}

fn seq_mut<'a>(v: &'a mut Value, path: &[&str]) -> Result<&'a mut Vec<Value>, String> {
    get_mut(v, path)?.as_sequence_mut().ok_or_else(|| format!("`{}` is not a list", path.join(".")))
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn named<'a>(items: &'a mut [Value], name: &str) -> Result<&'a mut Value, String> {
    let mut found = items.iter_mut().filter(|v| name_of(v) == name);
    match (found.next(), found.next()) {
        (Some(v), None) => Ok(v),
        (None, _) => Err(format!("no `{name}`")),
        (Some(_), Some(_)) => Err(format!("`{name}` twice")),
    }
}

fn is_wasm(f: &Value) -> bool {
    get(f, &["typed_config", "@type"]).and_then(Value::as_str) == Some("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")
}

/// The one HTTP connection manager of the one listener's one filter chain.
fn manager(doc: &mut Value) -> Result<&mut Value, String> {
    let listeners = seq_mut(doc, &["static_resources", "listeners"])?;
    let [listener] = listeners.as_mut_slice() else { return Err("not exactly one listener".into()) };
    let chains = seq_mut(listener, &["filter_chains"])?;
    let [chain] = chains.as_mut_slice() else { return Err("not exactly one filter chain".into()) };
    let hcm = named(seq_mut(chain, &["filters"])?, "envoy.filters.network.http_connection_manager")?;
    get_mut(hcm, &["typed_config"])
}

fn wasm_filter<'a>(doc: &'a mut Value, name: &str) -> Result<&'a mut Value, String> {
    let f = named(seq_mut(manager(doc)?, &["http_filters"])?, name)?;
    if is_wasm(f) {
        Ok(f)
    } else {
        Err(format!("`{name}` is not a Wasm filter"))
    }
}

fn routes(doc: &mut Value) -> Result<&mut Vec<Value>, String> {
    let hosts = seq_mut(manager(doc)?, &["route_config", "virtual_hosts"])?;
    let [host] = hosts.as_mut_slice() else { return Err("not exactly one virtual host".into()) };
    seq_mut(host, &["routes"])
}

/// The native read routes (`edge_logic::router::native_read`, the manifest's
/// only regex routes) as `policy` has them: gone where the gateway is not
/// public, keeping `Authorization` where the router forwards it.
fn native_reads(doc: &mut Value, policy: Option<edge_logic::router::native_read::NativeReads>) -> Result<(), String> {
    let routes = routes(doc)?;
    let native = |r: &Value| get(r, &["match", "safe_regex"]).is_some();
    match policy {
        None => routes.retain(|r| !native(r)),
        Some(p) if !p.strip_authorization => {
            for r in routes.iter_mut().filter(|r| native(r)) {
                r.as_mapping_mut().ok_or("route is not a mapping")?.remove("request_headers_to_remove");
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// A route that only a marked request can take (its match names a header;
/// the native read routes name `:method`, and count as marked here: every
/// patch of the unmarked routes leaves them alone).
fn marked(r: &Value) -> bool {
    r.get("match").is_none_or(|m| m.get("headers").is_some())
}

/// The unmarked routes (no header match: where every request starts) must
/// end with one that takes every path.
fn check_unmarked(doc: &mut Value) -> Result<(), String> {
    let last = routes(doc)?.last().ok_or("no routes")?;
    if marked(last) || last.get("match").and_then(|m| m.get("prefix")).and_then(Value::as_str) != Some("/") {
        return Err("the last route does not take every unmarked request".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> String {
        std::fs::read_to_string(crate::repo_root().join("manifests/envoy/envoy.yaml")).unwrap()
    }

    #[test]
    fn the_buffer_limit_reaches_the_listener_and_every_cluster() {
        let out = edit(&manifest(), &[Patch::BufferLimit(1 << 20)], &["*"], Path::new("/w")).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&out).unwrap();
        let limits: Vec<u64> = ["listeners", "clusters"]
            .iter()
            .flat_map(|k| doc["static_resources"][*k].as_sequence().unwrap().iter())
            .map(|v| v["per_connection_buffer_limit_bytes"].as_u64().unwrap())
            .collect();
        assert_eq!(limits, vec![1 << 20; 5], "one listener and four clusters");
    }

    #[test]
    fn edits_find_their_targets_or_fail() {
        let out = edit(
            &manifest(),
            &[Patch::ClusterPort("gateway", 1234), Patch::FilterConfig("router", "{\"preset\":\"none\"}".into()), Patch::UnmarkedTo("gateway")],
            &["router"],
            Path::new("/w"),
        )
        .unwrap();
        let doc: Value = serde_yaml_ng::from_str(&out).unwrap();
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        assert!(text.contains("port_value: 1234"));
        assert!(text.contains("/w/router.wasm") && !text.contains("health.wasm"), "{text}");
        // The routes no longer name the filters that are gone.
        let hosts = &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"];
        let named: std::collections::BTreeSet<&str> = hosts[0]["routes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|r| r.get("typed_per_filter_config").and_then(Value::as_mapping))
            .flat_map(|m| m.keys().filter_map(Value::as_str))
            .collect();
        assert_eq!(named, ["router"].into_iter().collect(), "{text}");
        assert!(!text.contains("no route"));
        let everywhere = edit(&manifest(), &[Patch::FilterEverywhere("health")], &["*"], Path::new("/w")).unwrap();
        assert_eq!(everywhere.matches("disabled: true").count(), manifest().matches("disabled: true").count() - 1);
        for bad in [Patch::ClusterPort("nope", 1), Patch::FilterConfig("envoy.filters.http.router", String::new())] {
            assert!(edit(&manifest(), &[bad], &["*"], Path::new("/w")).is_err());
        }
    }
}
