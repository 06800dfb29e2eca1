//! The route tables and the router agree: every backend the router marks
//! has its route in manifests/envoy/envoy.yaml and in
//! manifests/kubernetes/edge/routes.yaml, to the port manifests/kubernetes/
//! values.env gives it (and the router's README says so); no route takes a
//! mark the router does not set; and an unmarked request is refused by both.

use consistency::routes::{self, Action, Table};
use edge_logic::backend::Backend;

/// The values.env key of the port each backend listens on; `None` for the
/// health mark, which the tables may answer themselves (envoy.yaml: a
/// direct 200; routes.yaml: a gateway read of the empty block).
fn port_key(b: Backend) -> Option<&'static str> {
    match b {
        Backend::Gateway => Some("PORT_KUBO_GATEWAY"),
        Backend::Proxy => Some("PORT_CLUSTER_PROXY"),
        Backend::Kubo => Some("PORT_KUBO_RPC"),
        Backend::Rest => Some("PORT_CLUSTER_REST"),
        Backend::Health => None,
    }
}

/// Paths the router sends somewhere: the add routes are their own.
const PATHS: &[&str] = &["/", "/api/v0/add", "/api/v0/cat", "/ipfs/bafkqaaa", "/pins", "/.well-known/acme-challenge/t"];

fn tables() -> Vec<(&'static str, Table)> {
    let mut values = routes::values(&consistency::read("manifests/kubernetes/values.env").unwrap());
    // The health route's matches, which the deployer writes from the health filter's paths.
    let health = edge_logic::health::HealthConfig::from_json(values["FILTER_CONFIG_HEALTH"].as_bytes()).unwrap();
    // (Paths are plain ASCII, checked by the filter: Debug quoting is JSON's.)
    let path = |p: &String| format!(r#""path":{{"type":"Exact","value":{p:?}}}"#);
    let mark = format!(r#""headers":[{{"type":"Exact","name":"{}","value":"health"}}]"#, edge_logic::backend::BACKEND_HEADER);
    let list = |f: &dyn Fn(&String) -> String| format!("[{}]", health.paths.iter().map(f).collect::<Vec<_>>().join(","));
    values.insert("HEALTH_MATCHES".into(), list(&|p| format!("{{{}}}", path(p))));
    values.insert("HEALTH_MATCHES_MARKED".into(), list(&|p| format!("{{{},{mark}}}", path(p))));
    let envoy = routes::envoy(&consistency::read("manifests/envoy/envoy.yaml").unwrap()).unwrap();
    // With Envoy Gateway, the native gateway reads' route beside them.
    let templates = ["manifests/kubernetes/edge/routes.yaml", "manifests/kubernetes/envoy-gateway/native-reads.yaml"];
    let text = templates.iter().map(|t| consistency::read(t).unwrap()).collect::<Vec<_>>().join("\n---\n");
    let gateway = routes::gateway_api(&text, &values).unwrap();
    vec![("manifests/envoy/envoy.yaml", envoy), ("manifests/kubernetes/edge/routes.yaml", gateway)]
}

fn check(name: &str, table: &Table) -> Vec<String> {
    let values = routes::values(&consistency::read("manifests/kubernetes/values.env").unwrap());
    let mut wrong = Vec::new();
    for (m, _) in table {
        if let Some(mark) = &m.mark {
            if Backend::from_header_value(mark).is_none() {
                wrong.push(format!("{name}: a route for mark {mark:?}, which the router never sets"));
            }
        }
    }
    for b in Backend::ALL {
        let mark = b.header_value();
        for path in PATHS.iter().filter(|p| marks_on(p).contains(&b)) {
            let got = routes::resolve(table, path, Some(mark));
            let ok = match (port_key(b), got) {
                (Some(key), Some(Action::Port { port, .. })) => values.get(key).and_then(|v| v.parse::<u16>().ok()) == Some(*port),
                (None, Some(Action::Port { .. } | Action::Answer(_))) => true,
                _ => false,
            };
            if !ok {
                let want = port_key(b).map_or("an answer".to_string(), |k| format!("port {k}={:?}", values.get(k)));
                wrong.push(format!("{name}: {path} marked {mark:?} gets {got:?}, the router means {want}"));
            }
        }
    }
    // Adds stream for as long as the upload lasts.
    for b in [Backend::Proxy, Backend::Kubo] {
        if !matches!(routes::resolve(table, "/api/v0/add", Some(b.header_value())), Some(Action::Port { no_timeout: true, .. })) {
            wrong.push(format!("{name}: /api/v0/add marked {:?} has a route timeout", b.header_value()));
        }
    }
    // The router marks all it lets through: what is unmarked (router not
    // run, or a platform path no platform route took) or marked otherwise
    // is refused, never sent to a guessed backend; so is a mark the filters
    // never give on that path.
    for path in PATHS {
        let never = Backend::ALL.into_iter().filter(|b| !marks_on(path).contains(b)).map(|b| Some(b.header_value()));
        for mark in [None, Some("admin")].into_iter().chain(never) {
            let got = routes::resolve(table, path, mark);
            if !matches!(got, Some(Action::Refuse(_))) {
                wrong.push(format!("{name}: {path} marked {mark:?} gets {got:?}, not a refusal"));
            }
        }
    }
    wrong
}

/// The marks the filters give a request on `path`: on the health path only
/// `health` (the router's answer for GET and HEAD there), on /api/v0/add
/// `proxy` (the router) and `kubo` (add_response, only-hash adds); those
/// paths have routes of their own (an exact path, on which the filters that
/// work there run), anything else every mark.
fn marks_on(path: &str) -> Vec<Backend> {
    match path {
        "/" => vec![Backend::Health],
        "/api/v0/add" => vec![Backend::Proxy, Backend::Kubo],
        _ => Backend::ALL.to_vec(),
    }
}

#[test]
fn both_route_tables_follow_the_router() {
    let wrong: Vec<String> = tables().iter().flat_map(|(name, t)| check(name, t)).collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The router's README names each mark's port in its first table.
#[test]
fn the_router_readme_names_the_same_ports() {
    let values = routes::values(&consistency::read("manifests/kubernetes/values.env").unwrap());
    let readme = consistency::read("filters/router/README.md").unwrap();
    let mut wrong = Vec::new();
    for b in Backend::ALL {
        let row = readme.lines().find(|l| l.starts_with(&format!("| `{}` |", b.header_value())));
        let Some(row) = row else {
            wrong.push(format!("no row for {:?}", b.header_value()));
            continue;
        };
        let port = row.trim_end_matches('|').rsplit('|').next().unwrap_or_default().trim();
        let want = port_key(b).and_then(|k| values.get(k)).map_or("none", String::as_str);
        if port != want {
            wrong.push(format!("filters/router/README.md: `{}` on port {port}, values.env: {want}", b.header_value()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_tables_are_read_whole() {
    // A reader that found no routes would make the test above vacuous: each
    // table has a route for every mark the router sets, and the unmarked one.
    for (name, t) in tables() {
        for b in Backend::ALL {
            assert!(t.iter().any(|(m, _)| m.mark.as_deref() == Some(b.header_value())), "{name}: no route for {:?}: {t:?}", b.header_value());
        }
        assert!(t.iter().any(|(m, _)| m.mark.is_none()), "{name}: no unmarked route: {t:?}");
    }
}

/// Both tables send a clean gateway read to the gateway by themselves (no
/// Wasm filter marks it: the native read route), without a route timeout; a
/// read with an escape, another method, or no root is the router's, and
/// unmarked it is refused.
#[test]
fn both_tables_read_natively_what_the_router_would_send_to_the_gateway() {
    let values = routes::values(&consistency::read("manifests/kubernetes/values.env").unwrap());
    let gateway: u16 = values["PORT_KUBO_GATEWAY"].parse().unwrap();
    for (name, t) in tables() {
        for (method, path) in [("GET", "/ipfs/bafkqaaa"), ("HEAD", "/ipfs/bafkqaaa/a.txt"), ("GET", "/ipns/example.org/")] {
            let got = routes::resolve_method(&t, Some(method), path, None);
            assert_eq!(got, Some(&Action::Port { port: gateway, no_timeout: true }), "{name}: {method} {path}");
        }
        for (method, path) in [("GET", "/ipfs/bafkqaaa/a%20b"), ("POST", "/ipfs/bafkqaaa"), ("OPTIONS", "/ipfs/bafkqaaa"), ("GET", "/ipfs/"), ("GET", "/")] {
            let got = routes::resolve_method(&t, Some(method), path, None);
            assert!(matches!(got, Some(Action::Refuse(_))), "{name}: {method} {path} unmarked gets {got:?}");
        }
        let regexes: Vec<&str> = t.iter().filter(|(m, _)| m.kind == routes::PathKind::Regex).map(|(m, _)| m.path.as_str()).collect();
        assert_eq!(regexes, [edge_logic::router::native_read::PATH_REGEX; 2], "{name}: one route per method, the router's regex");
    }
}
