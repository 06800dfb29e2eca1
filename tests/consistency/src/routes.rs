//! The route tables read into one shape, so they can be compared with each
//! other and with the router's backends: manifests/envoy/envoy.yaml (static
//! Envoy) and manifests/kubernetes/edge/routes.yaml (Gateway API, rendered
//! with the ports of manifests/kubernetes/values.env).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

/// What a route does with the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Sent to this port (an Envoy cluster's endpoint, a Service port).
    Port { port: u16, no_timeout: bool },
    /// Answered by the route itself with this status.
    Answer(u16),
    /// Refused by the route table: a direct answer of 400 or more, or a
    /// Gateway API rule without a backend (which the specification makes a
    /// 500 on every implementation).
    Refuse(u16),
}

/// How a route's path is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathKind {
    Prefix,
    /// A regex on the whole path (the native gateway reads').
    Regex,
    Exact,
}

/// A route's match: the path it names and how, the method it requires (the
/// native gateway reads), and the routing mark it requires, if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    pub path: String,
    pub kind: PathKind,
    pub method: Option<String>,
    pub mark: Option<String>,
}

impl Match {
    /// Whether it takes a request with this method (`None`: one no route names), path and mark.
    pub fn takes(&self, method: Option<&str>, path: &str, mark: Option<&str>) -> bool {
        let path_ok = match self.kind {
            PathKind::Exact => path == self.path,
            PathKind::Prefix => path.starts_with(self.path.as_str()),
            // The regexes here are the native read route's, whose rule is the router's own.
            PathKind::Regex => {
                assert_eq!(self.path, edge_logic::router::native_read::PATH_REGEX, "a regex route that is not the native reads'");
                edge_logic::router::native_read::is_native_read_path(path.as_bytes())
            }
        };
        path_ok && self.method.as_deref().is_none_or(|m| Some(m) == method) && (self.mark.is_none() || self.mark.as_deref() == mark)
    }
}

/// A route table, first match first (the order each table is written in).
pub type Table = Vec<(Match, Action)>;

/// The values of `values.env` (`KEY=value` lines, `#` comments).
pub fn values(env: &str) -> BTreeMap<String, String> {
    env.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// `${KEY}` replaced by `values[KEY]`, or by `x` for a key values.env does
/// not hold (names, namespaces, digests the deployer computes).
pub fn substitute(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        out.push_str(values.get(&after[..end]).map_or("x", String::as_str));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn mark_of(headers: Option<&Value>, name_key: &str, value_of: impl Fn(&Value) -> Option<String>) -> Result<Option<String>, String> {
    let Some(hs) = headers else { return Ok(None) };
    let hs = hs.as_sequence().ok_or("headers is not a list")?;
    let mut mark = None;
    for h in hs {
        let name = h.get(name_key).and_then(Value::as_str).ok_or("a header match without a name")?;
        if name == ":method" {
            continue; // the method, read where the route is
        }
        if name != edge_logic::backend::BACKEND_HEADER {
            return Err(format!("a route matches header {name:?}, not the routing mark"));
        }
        mark = Some(value_of(h).ok_or("a routing-mark match that is not exact")?);
    }
    Ok(mark)
}

fn port(v: &Value) -> Option<u16> {
    v.as_u64().and_then(|p| u16::try_from(p).ok())
}

/// manifests/envoy/envoy.yaml's routes.
pub fn envoy(text: &str) -> Result<Table, String> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let clusters: BTreeMap<String, u16> = doc["static_resources"]["clusters"]
        .as_sequence()
        .ok_or("no clusters")?
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let eps = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"];
            port(eps).map(|p| (name.clone(), p)).ok_or(format!("cluster {name} has no endpoint port"))
        })
        .collect::<Result<_, _>>()?;
    let listeners = doc["static_resources"]["listeners"].as_sequence().ok_or("no listeners")?;
    let mut table = Table::new();
    for l in listeners {
        for chain in l["filter_chains"].as_sequence().ok_or("no filter_chains")? {
            for f in chain["filters"].as_sequence().ok_or("no filters")? {
                let Some(hosts) = f["typed_config"]["route_config"]["virtual_hosts"].as_sequence() else { continue };
                for host in hosts {
                    for r in host["routes"].as_sequence().ok_or("a virtual host without routes")? {
                        let m = &r["match"];
                        let (path, kind) = if let Some(p) = m.get("path").and_then(Value::as_str) {
                            (p, PathKind::Exact)
                        } else if let Some(p) = m.get("prefix").and_then(Value::as_str) {
                            (p, PathKind::Prefix)
                        } else if let Some(p) = m["safe_regex"].get("regex").and_then(Value::as_str) {
                            (p, PathKind::Regex)
                        } else {
                            return Err("a route without path, prefix or safe_regex".into());
                        };
                        let mark = mark_of(m.get("headers"), "name", |h| h["string_match"]["exact"].as_str().map(str::to_string))?;
                        let method = m["headers"]
                            .as_sequence()
                            .and_then(|hs| hs.iter().find(|h| h["name"].as_str() == Some(":method")))
                            .map(|h| h["string_match"]["exact"].as_str().map(str::to_string).ok_or("a :method match that is not exact"))
                            .transpose()?;
                        let action = if let Some(route) = r.get("route") {
                            let c = route["cluster"].as_str().ok_or("a route without a cluster")?;
                            let port = *clusters.get(c).ok_or(format!("route to unknown cluster {c}"))?;
                            Action::Port { port, no_timeout: route.get("timeout").and_then(Value::as_str) == Some("0s") }
                        } else if let Some(d) = r.get("direct_response") {
                            let s = d["status"].as_u64().and_then(|s| u16::try_from(s).ok()).ok_or("a direct response without status")?;
                            if s >= 400 {
                                Action::Refuse(s)
                            } else {
                                Action::Answer(s)
                            }
                        } else {
                            return Err(format!("route {path} {mark:?}: neither route nor direct_response"));
                        };
                        table.push((Match { path: path.to_string(), kind, method, mark }, action));
                    }
                }
            }
        }
    }
    Ok(table)
}

/// The HTTPRoutes' rules on the HTTPS listener in `template` (documents
/// joined by `---`), rendered with `values` (the HTTP listener only
/// redirects to HTTPS). Gateway API orders rules by match, not by position:
/// the table is sorted as Envoy Gateway v1.9.0 sorts them (Exact, then
/// RegularExpression, then PathPrefix; then the longer path; then more header
/// matches).
pub fn gateway_api(template: &str, values: &BTreeMap<String, String>) -> Result<Table, String> {
    let text = substitute(template, values);
    let mut table = Table::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let route: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if route["kind"].as_str() != Some("HTTPRoute") {
            continue;
        }
        let https = route["spec"]["parentRefs"].as_sequence().is_some_and(|ps| ps.iter().any(|p| p["sectionName"].as_str() == Some("https")));
        if !https {
            continue;
        }
        for rule in route["spec"]["rules"].as_sequence().ok_or("an HTTPRoute without rules")? {
            let action = match rule.get("backendRefs").and_then(Value::as_sequence) {
                Some(refs) if !refs.is_empty() => {
                    let [r] = refs.as_slice() else { return Err("a rule with several backends".into()) };
                    let port = port(&r["port"]).ok_or("a backendRef without a port")?;
                    Action::Port { port, no_timeout: rule["timeouts"]["request"].as_str() == Some("0s") }
                }
                _ => Action::Refuse(500),
            };
            for m in rule["matches"].as_sequence().ok_or("a rule without matches")? {
                let path = m["path"]["value"].as_str().ok_or("a match without a path")?;
                let kind = match m["path"]["type"].as_str() {
                    Some("PathPrefix") => PathKind::Prefix,
                    Some("Exact") => PathKind::Exact,
                    Some("RegularExpression") => PathKind::Regex,
                    _ => return Err(format!("{path}: only PathPrefix, Exact and RegularExpression matches are read here")),
                };
                let mark = mark_of(m.get("headers"), "name", |h| {
                    (h["type"].as_str() == Some("Exact")).then(|| h["value"].as_str().map(str::to_string)).flatten()
                })?;
                let method = m.get("method").and_then(Value::as_str).map(str::to_string);
                table.push((Match { path: path.to_string(), kind, method, mark }, action.clone()));
            }
        }
    }
    // Envoy Gateway's precedence: the path kind, then the longer path, then a header match.
    table.sort_by(|(a, _), (b, _)| {
        b.kind.cmp(&a.kind).then(b.path.len().cmp(&a.path.len())).then(b.mark.is_some().cmp(&a.mark.is_some()))
    });
    Ok(table)
}

/// What the table does with a request for `path` carrying `mark`, by a
/// method no route names: the first route that takes it.
pub fn resolve<'a>(table: &'a Table, path: &str, mark: Option<&str>) -> Option<&'a Action> {
    resolve_method(table, None, path, mark)
}

/// The same for a request with `method`.
pub fn resolve_method<'a>(table: &'a Table, method: Option<&str>, path: &str, mark: Option<&str>) -> Option<&'a Action> {
    table.iter().find(|(m, _)| m.takes(method, path, mark)).map(|(_, a)| a)
}
