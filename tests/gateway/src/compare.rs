//! What an Envoy configuration does with a request, reduced to facts that can be compared
//! between manifests/envoy/envoy.yaml (static) and the configuration Envoy Gateway generated
//! (admin `/config_dump`): the filter chain in order, the connection manager's and the
//! backends' HTTP settings, and for each (router mark, path) the route Envoy picks: where it
//! sends the request, with what rewrite and timeout. Routes are compared by what they decide
//! (first match wins, as in Envoy), not by how they are written: Envoy Gateway orders and
//! spells its matches its own way.

use serde_json::Value;
use std::collections::BTreeMap;

/// The header the router sets; the routes follow it.
pub const MARK: &str = "x-ipfs-edge-backend";

/// Paths probed, and router marks (None: no header).
pub const PATHS: &[&str] = &[
    "/",
    "/api/v0/add",
    "/api/v0/add/x",
    "/api/v0/addx",
    "/api/v0/version",
    "/ipfs/bafkqaaa",
    "/ipfs/bafkqaaa/a%20b",
    "/ipns/example.org/",
    "/id",
];
/// Methods probed: the native gateway reads match GET (and HEAD), every other route none.
pub const METHODS: &[&str] = &["GET", "POST"];
pub const MARKS: &[Option<&str>] = &[None, Some("gateway"), Some("proxy"), Some("kubo"), Some("rest"), Some("health"), Some("other")];

/// Facts, by name; equal maps mean the same decisions.
pub type Facts = BTreeMap<String, String>;

/// The decision of one route table for every (mark, path), and for every path the Wasm
/// filters a request runs through: those of the route it starts on, unmarked (Envoy builds a
/// stream's filter chain from the route matched before any filter ran; the mark comes later),
/// in the order of the connection manager's `http_filters`: a filter runs on a route unless
/// it is `disabled` there, and a filter `disabled` in the chain runs only where a route's
/// `typed_per_filter_config` turns it on (as Envoy Gateway enables a policy's filters).
pub fn route_facts(routes: &[Value], hcm: &Value, role: &dyn Fn(&str) -> String, facts: &mut Facts) {
    for method in METHODS {
        for mark in MARKS {
            for path in PATHS {
                let key = format!("route {method} {} {path}", mark.unwrap_or("(none)"));
                let r = routes.iter().find(|r| matches(&r["match"], method, path, *mark));
                facts.insert(key, r.map_or("no route: 404".into(), |r| decision(r, role)));
            }
        }
        filter_facts(routes, hcm, method, facts);
    }
}

fn filter_facts(routes: &[Value], hcm: &Value, method: &str, facts: &mut Facts) {
    for path in PATHS {
        let r = routes.iter().find(|r| matches(&r["match"], method, path, None));
        let on: Vec<String> = hcm["http_filters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["typed_config"]["@type"].as_str().is_some_and(|t| t.ends_with("wasm.v3.Wasm")))
            .filter(|x| {
                let name = x["name"].as_str().unwrap_or("");
                let per = r.map(|r| &r["typed_per_filter_config"][name]).filter(|p| !p.is_null());
                let off_here = per.is_some_and(|p| p["disabled"].as_bool().unwrap_or(false));
                let on_here = per.is_some();
                !off_here && (on_here || !x["disabled"].as_bool().unwrap_or(false))
            })
            .map(|x| format!("wasm:{}", x["typed_config"]["config"]["root_id"].as_str().unwrap_or("?")))
            .collect();
        facts.insert(format!("filters run on {method} {path}"), if on.is_empty() { "none".into() } else { on.join(" -> ") });
    }
}

fn matches(m: &Value, method: &str, path: &str, mark: Option<&str>) -> bool {
    let path_ok = if let Some(p) = m["prefix"].as_str() {
        path.starts_with(p)
    } else if let Some(p) = m["path"].as_str() {
        path == p
    } else if let Some(p) = m["path_separated_prefix"].as_str() {
        path == p || path.starts_with(&format!("{p}/"))
    } else if let Some(re) = m["safe_regex"]["regex"].as_str() {
        // RE2 on the whole path, as Envoy matches it.
        regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|re| re.is_match(path))
    } else {
        false
    };
    if !path_ok {
        return false;
    }
    m["headers"].as_array().into_iter().flatten().all(|h| {
        let name = h["name"].as_str().unwrap_or("");
        let value = if name.eq_ignore_ascii_case(MARK) {
            mark
        } else if name == ":method" {
            Some(method)
        } else {
            None
        };
        let sm = &h["string_match"];
        let want = sm["exact"].as_str().or(h["exact_match"].as_str());
        let hit = match (want, value) {
            (Some(w), Some(v)) => w == v,
            (Some(_), None) => false,
            (None, v) => {
                if let Some(present) = h["present_match"].as_bool() {
                    v.is_some() == present
                } else {
                    v.is_some()
                }
            }
        };
        hit != h["invert_match"].as_bool().unwrap_or(false)
    })
}

fn decision(r: &Value, role: &dyn Fn(&str) -> String) -> String {
    if let Some(d) = r.get("direct_response") {
        return format!("answer {}", d["status"]);
    }
    if let Some(d) = r.get("redirect") {
        return format!("redirect {}", d);
    }
    let a = &r["route"];
    let mut s = match a["cluster"].as_str() {
        Some(c) => format!("to {}", role(c)),
        None => format!("to {}", a["weighted_clusters"]),
    };
    if let Some(p) = a["regex_rewrite"]["substitution"].as_str() {
        s.push_str(&format!(", path rewritten to {p}"));
    }
    if let Some(p) = a["prefix_rewrite"].as_str() {
        s.push_str(&format!(", prefix rewritten to {p}"));
    }
    let t = a["timeout"].as_str().map(duration).unwrap_or_else(|| "15s".into());
    s.push_str(&format!(", timeout {}", if t == "0s" { "none".into() } else { t }));
    // The request headers the route itself sets and removes (the native gateway reads).
    let mut set: Vec<String> = r["request_headers_to_add"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| format!("{}: {}", h["header"]["key"].as_str().unwrap_or("").to_ascii_lowercase(), h["header"]["value"].as_str().unwrap_or("")))
        .collect();
    set.sort();
    let mut removed: Vec<String> = r["request_headers_to_remove"].as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_ascii_lowercase)).collect();
    removed.sort();
    if !set.is_empty() {
        s.push_str(&format!(", sets {}", set.join(", ")));
    }
    if !removed.is_empty() {
        s.push_str(&format!(", removes {}", removed.join(", ")));
    }
    s
}

/// "0s", "15s", "300s", as Envoy writes them ("5m" in YAML is not valid proto JSON).
pub fn duration(d: &str) -> String {
    let d = d.trim();
    if let Some(s) = d.strip_suffix('s') {
        if let Ok(f) = s.parse::<f64>() {
            return format!("{}s", f);
        }
    }
    d.to_string()
}

/// Facts of an HTTP connection manager and its listener.
pub fn hcm_facts(listener: &Value, hcm: &Value, facts: &mut Facts) {
    let f = |facts: &mut Facts, k: &str, v: String| {
        facts.insert(k.to_string(), v);
    };
    f(facts, "listener per_connection_buffer_limit_bytes", num(&listener["per_connection_buffer_limit_bytes"], "1048576 (default)"));
    let h1 = &hcm["http_protocol_options"];
    f(facts, "downstream HTTP/1 enable_trailers", h1["enable_trailers"].as_bool().unwrap_or(false).to_string());
    f(facts, "downstream HTTP/1.0 accepted", h1["accept_http_10"].as_bool().unwrap_or(false).to_string());
    f(facts, "stream_idle_timeout", hcm["stream_idle_timeout"].as_str().map(duration).unwrap_or_else(|| "300s".into()));
    f(facts, "request_timeout", hcm["request_timeout"].as_str().map(duration).unwrap_or_else(|| "none (default)".into()));
    f(facts, "normalize_path", hcm["normalize_path"].as_bool().unwrap_or(false).to_string());
    f(facts, "merge_slashes", hcm["merge_slashes"].as_bool().unwrap_or(false).to_string());
    f(facts, "path_with_escaped_slashes_action", hcm["path_with_escaped_slashes_action"].as_str().unwrap_or("KEEP_UNCHANGED (default)").to_string());
    // Headers removed before any filter and before routing (the client's mark).
    let early: Vec<String> = hcm["early_header_mutation_extensions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["typed_config"]["mutations"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["remove"].as_str().map(str::to_ascii_lowercase))
        .collect();
    f(facts, "removed before routing", if early.is_empty() { "none".into() } else { early.join(", ") });
    f(facts, "server_header_transformation", hcm["server_header_transformation"].as_str().unwrap_or("OVERWRITE (default)").to_string());
    // The chain but the Wasm filters, by type (which Wasm filters run where, in what
    // order, is a fact of each route: `route_facts`).
    let chain: Vec<String> = hcm["http_filters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x["typed_config"]["@type"].as_str().unwrap_or(""))
        .filter(|t| !t.ends_with("wasm.v3.Wasm"))
        .map(|t| t.rsplit('/').next().unwrap_or(t).trim_start_matches("envoy.extensions.filters.http.").to_string())
        .collect();
    f(facts, "http filters but Wasm", chain.join(" -> "));
    let router = hcm["http_filters"].as_array().into_iter().flatten().find(|x| x["typed_config"]["@type"].as_str().is_some_and(|t| t.ends_with("router.v3.Router")));
    f(facts, "router suppress_envoy_headers", router.map_or("false".into(), |r| r["typed_config"]["suppress_envoy_headers"].as_bool().unwrap_or(false).to_string()));
    // Wasm failure policy per filter.
    for x in hcm["http_filters"].as_array().into_iter().flatten() {
        let c = &x["typed_config"]["config"];
        if let Some(root) = c["root_id"].as_str() {
            f(facts, &format!("wasm:{root} failure_policy"), c["failure_policy"].as_str().unwrap_or("FAIL_CLOSED (default)").to_string());
            let fail_open = c["fail_open"].as_bool().unwrap_or(false);
            f(facts, &format!("wasm:{root} fail_open"), fail_open.to_string());
            let conf = c["configuration"]["value"].as_str().unwrap_or("");
            f(facts, &format!("wasm:{root} configuration"), conf.to_string());
        }
    }
}

/// Facts of the upstream cluster a role goes to.
pub fn cluster_facts(role: &str, cluster: &Value, facts: &mut Facts) {
    let opts = &cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    let h1 = &opts["explicit_http_config"]["http_protocol_options"];
    let h1 = if h1.is_null() { &opts["use_downstream_protocol_config"]["http_protocol_options"] } else { h1 };
    let h1 = if h1.is_null() { &opts["auto_config"]["http_protocol_options"] } else { h1 };
    facts.insert(format!("backend {role} HTTP/1 enable_trailers"), h1["enable_trailers"].as_bool().unwrap_or(false).to_string());
    facts.insert(format!("backend {role} per_connection_buffer_limit_bytes"), num(&cluster["per_connection_buffer_limit_bytes"], "1048576 (default)"));
    facts.insert(
        format!("backend {role} connect_timeout"),
        cluster["connect_timeout"].as_str().map(duration).unwrap_or_else(|| "5s (default)".into()),
    );
}

fn num(v: &Value, default: &str) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => default.to_string(),
    }
}

/// Every fact whose value differs, or that one side lacks: (fact, static, generated).
pub fn diff(a: &Facts, b: &Facts) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        let (x, y) = (a.get(k).cloned().unwrap_or_default(), b.get(k).cloned().unwrap_or_default());
        if x != y {
            out.push((k.clone(), x, y));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_match_wins_and_headers_must_match() {
        let routes = vec![
            json!({"match": {"path": "/api/v0/add", "headers": [{"name": MARK, "string_match": {"exact": "proxy"}}]}, "route": {"cluster": "p", "timeout": "0s"}}),
            json!({"match": {"prefix": "/", "headers": [{"name": MARK, "string_match": {"exact": "proxy"}}]}, "route": {"cluster": "p"}}),
            json!({"match": {"prefix": "/"}, "direct_response": {"status": 403}}),
        ];
        let mut f = Facts::new();
        route_facts(&routes, &json!({}), &|c| c.to_string(), &mut f);
        assert_eq!(f["route POST proxy /api/v0/add"], "to p, timeout none");
        assert_eq!(f["route POST proxy /api/v0/add/x"], "to p, timeout 15s");
        assert_eq!(f["route POST (none) /api/v0/add"], "answer 403");
        assert_eq!(f["route GET kubo /id"], "answer 403");
    }

    #[test]
    fn filters_run_where_the_unmarked_route_turns_them_on() {
        let wasm = |name: &str, root: &str, disabled: bool| {
            json!({"name": name, "disabled": disabled, "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": {"root_id": root}}})
        };
        let hcm = json!({"http_filters": [wasm("a", "router", true), wasm("b", "add_response", true), wasm("c", "health", false)]});
        let on = |names: &[&str]| names.iter().map(|n| (n.to_string(), json!({"config": {}}))).collect::<serde_json::Map<_, _>>();
        let routes = vec![
            json!({"match": {"prefix": "/", "headers": [{"name": MARK, "string_match": {"exact": "proxy"}}]}, "route": {"cluster": "p"}, "typed_per_filter_config": on(&["b"])}),
            json!({"match": {"path": "/api/v0/add"}, "direct_response": {"status": 500}, "typed_per_filter_config": on(&["a", "b"])}),
            json!({"match": {"prefix": "/"}, "direct_response": {"status": 500}, "typed_per_filter_config": {"a": {"config": {}}, "c": {"disabled": true}}}),
        ];
        let mut f = Facts::new();
        route_facts(&routes, &hcm, &|c| c.to_string(), &mut f);
        assert_eq!(f["filters run on POST /api/v0/add"], "wasm:router -> wasm:add_response -> wasm:health");
        assert_eq!(f["filters run on GET /id"], "wasm:router");
    }

    #[test]
    fn separated_prefix_is_a_path_segment_prefix() {
        let m = json!({"path_separated_prefix": "/api/v0/add"});
        assert!(matches(&m, "POST", "/api/v0/add", None));
        assert!(matches(&m, "POST", "/api/v0/add/x", None));
        assert!(!matches(&m, "POST", "/api/v0/addx", None));
    }

    #[test]
    fn a_regex_takes_the_whole_path_and_a_method_match_its_method() {
        let m = json!({"safe_regex": {"regex": "/ipfs/[a-z]+"}, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]});
        assert!(matches(&m, "GET", "/ipfs/abc", None));
        assert!(!matches(&m, "GET", "/ipfs/abc/d", None));
        assert!(!matches(&m, "POST", "/ipfs/abc", None));
        let r = json!({"match": m, "route": {"cluster": "g", "timeout": "0s"}, "request_headers_to_remove": ["Authorization"],
            "request_headers_to_add": [{"header": {"key": MARK, "value": "gateway"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]});
        assert_eq!(decision(&r, &|c| c.to_string()), format!("to g, timeout none, sets {MARK}: gateway, removes authorization"));
    }
}
