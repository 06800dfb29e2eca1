//! The deployer's Envoy Gateway objects (`deployer render`) translated by the real Envoy
//! Gateway (standalone: File provider, Host infrastructure, Envoy through func-e), and the
//! edge tested through the Envoy it configured. Runs in a network and mount namespace of its
//! own (src/ns.rs), entered before any thread starts: hence a main of our own.
//!
//! One Envoy Gateway at a time (its ports are fixed): the trials run in order, each asking
//! for the variant of the objects it needs; a new variant stops the previous instance.

use e2e::cases::{add, client, health, streaming};
use e2e::edge::{Proto, Req};
use e2e::recorder::Recorder;
use gateway::eg::EnvoyGateway;
use gateway::files::FileServer;
use gateway::render::{self, ServicePort};
use gateway::status;
use gateway::tls;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

/// The domain rendered; the end-to-end clients send `Host: edge.test`.
const DOMAIN: &str = "edge.test";
const CID0: &str = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM";
const CID1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
/// The add filter's upload limit in [`Variant::Daemons`]: above every upload of the shared
/// add cases (the largest, 4 MiB), low enough that the limit case's uploads stay small.
const DAEMONS_MAX_UPLOAD: u64 = 5 * 1024 * 1024;

struct World {
    /// `deployer render` as written.
    rendered: Vec<Value>,
    /// What Envoy Gateway reads: the rendered Gateway API and Envoy Gateway objects with
    /// Backends and the test certificate's Secret.
    objects: Vec<Value>,
    /// Recording taps in front of the real daemons, by the router's names (gateway, proxy, kubo, rest).
    backends: BTreeMap<String, Recorder>,
    files: FileServer,
    ca: Vec<u8>,
    /// The same CA as a PEM file, for a real client's trust store (Node's NODE_EXTRA_CA_CERTS).
    ca_file: std::path::PathBuf,
    name: String,
    namespace: String,
}

/// The router's backend name for a Service port (values.env is the one place for them).
fn role(sp: &ServicePort) -> Option<&'static str> {
    [("PORT_KUBO_GATEWAY", "gateway"), ("PORT_CLUSTER_PROXY", "proxy"), ("PORT_KUBO_RPC", "kubo"), ("PORT_CLUSTER_REST", "rest")]
        .into_iter()
        .find(|(k, _)| render::port(k) == sp.port)
        .map(|(_, r)| r)
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("edge-gateway-render-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rendered = render::render(DOMAIN, &dir.join("rendered"));
        // Peer 0 of a local cluster of the real daemons, a recording tap in front of each
        // of its four (started inside this binary's network namespace, as Envoy is).
        let p = &e2e::real::cluster().peers[0];
        let backends: BTreeMap<String, Recorder> = [
            ("gateway", p.gateway()),
            ("proxy", p.proxy()),
            ("kubo", p.kubo_rpc()),
            ("rest", p.rest()),
        ]
        .into_iter()
        .map(|(r, upstream)| (r.to_string(), Recorder::tap(r, upstream)))
        .collect();
        let eg_objects = render::for_envoy_gateway(&rendered);
        let mut objects = render::with_backends(&eg_objects, &|sp| role(sp).map(|r| backends[r].addr));
        let (secrets, ca) = render::tls_secrets(&objects, &dir);
        objects.extend(secrets);
        let ca_file = dir.join("clients-ca.pem");
        std::fs::write(&ca_file, &ca).unwrap();
        // The domain resolves to the Gateway's listeners, for clients given its URL.
        gateway::ns::add_host(DOMAIN, Ipv4Addr::LOCALHOST);
        let files = gateway::files::serve_rendered(&rendered);
        let name = render::value("NAME");
        let namespace = render::value("NAMESPACE");
        World { rendered, objects, backends, files, ca, ca_file, name, namespace }
    })
}

/// Which objects an Envoy Gateway instance was started on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Rendered,
    /// The router's pinned SHA-256 is not the served file's.
    WrongSha,
    /// The router's URL names a port nothing listens on.
    Unreachable,
    /// The edge as the shared end-to-end cases want it (tests/e2e/src/cases): the Backends
    /// straight at peer 0's daemons (the taps hold a request whole and mark answers, and the
    /// add cases compare bytes and stream), the router letting anyone add (the same bytes go
    /// to Kubo and through the edge), the add filter's upload limit at [`DAEMONS_MAX_UPLOAD`]
    /// and no API rate limit (the cases send hundreds of RPC calls from one address; the
    /// limit is tested on its own). The REST Backend, which no case uses, is a server that
    /// ends its answers with a trailer (one Envoy Gateway start less).
    Daemons,
    /// The health filter in passive mode on more paths ([`health::PASSIVE`]).
    HealthPassive,
    /// The health filter in active mode ([`health::active`]) as the deployer renders it,
    /// its checks naming the clusters Envoy Gateway generates ([`deployer_active_health`]).
    HealthActive,
    /// Without the API routes' rate limit (tested on its own), so the whole hostile corpus
    /// reaches the router and not a 429.
    NoRateLimit,
}

/// The health configuration of the variants that differ from the render in health alone
/// (`None`: another variant). Envoy Gateway switches between them live.
fn health_json(v: Variant) -> Option<String> {
    match v {
        Variant::Rendered => Some(render::value("FILTER_CONFIG_HEALTH")),
        Variant::HealthPassive => Some(health::PASSIVE.to_string()),
        Variant::HealthActive => Some(health::active(None)),
        _ => None,
    }
}

/// The objects of a health variant: `deployer render --health-config` with its configuration,
/// whose routes, route filters and extension policies (the deployer chooses them by the
/// configuration: Envoy's own answer or the health filter's, on which paths, with which
/// checks) replace the world's; everything else (Backends, Secrets) is the world's. The
/// rendered variant is the world's objects themselves.
fn health_objects(v: Variant) -> Vec<Value> {
    static RENDERS: Mutex<BTreeMap<String, Vec<Value>>> = Mutex::new(BTreeMap::new());
    let config = health_json(v).expect("a health variant");
    if v == Variant::Rendered {
        return world().objects.clone();
    }
    let mut renders = RENDERS.lock().unwrap_or_else(|e| e.into_inner());
    let w = world();
    let chosen = |o: &Value| matches!(render::kind(o), "HTTPRoute" | "HTTPRouteFilter" | "EnvoyExtensionPolicy");
    let ours = renders.entry(config.clone()).or_insert_with(|| {
        // Beside the world's render, in the directory removed at the end.
        let dir = std::env::temp_dir().join(format!("edge-gateway-render-{}", std::process::id())).join(format!("{v:?}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("health.json");
        std::fs::write(&file, &config).unwrap();
        let objs = render::render_with(DOMAIN, &dir.join("rendered"), &["--health-config".as_ref(), file.as_os_str()]);
        let objs = render::with_backends(&render::for_envoy_gateway(&objs), &|sp| role(sp).map(|r| w.backends[r].addr));
        objs.into_iter().filter(chosen).collect()
    });
    w.objects.iter().filter(|o| !chosen(o)).cloned().chain(ours.iter().cloned()).collect()
}

/// The health configuration `deployer render --health-config` writes for active mode given
/// without `checks`: the deployer aims the filter's default checks (the backends of its
/// README) at the clusters Envoy Gateway generates, `httproute/<namespace>/<route>/rule/<i>`
/// of the rule each backend's mark selects (the defaults name manifests/envoy/envoy.yaml's
/// clusters, which the generated configuration does not have).
fn deployer_active_health() -> Value {
    let objs = health_objects(Variant::HealthActive);
    let policy = objs.iter().find(|o| render::kind(o) == "EnvoyExtensionPolicy" && render::name(o) == format!("{}-health", world().name));
    let cfg = policy.and_then(|p| p["spec"]["wasm"].as_array()?.iter().find(|x| x["name"] == "health").map(|x| x["config"].clone()));
    let cfg = cfg.expect("the health policy's health filter in the render");
    let checks = cfg["active"]["checks"].as_array().cloned().unwrap_or_default();
    assert!(
        checks.len() == 3 && checks.iter().all(|c| c["cluster"].as_str().is_some_and(|n| n.starts_with("httproute/"))),
        "the deployer's active checks: {checks:?}"
    );
    cfg
}

fn objects_for(v: Variant) -> Vec<Value> {
    let mut objects = if health_json(v).is_some() { health_objects(v) } else { world().objects.clone() };
    if matches!(v, Variant::NoRateLimit | Variant::Daemons) {
        for p in objects.iter_mut().filter(|o| render::kind(o) == "BackendTrafficPolicy") {
            p["spec"].as_object_mut().unwrap().remove("rateLimit");
        }
    }
    if v == Variant::Daemons {
        let p = &e2e::real::cluster().peers[0];
        let daemon = |role: &str| match role {
            "gateway" => p.gateway(),
            "proxy" => p.proxy(),
            "kubo" => p.kubo_rpc(),
            _ => trailer_server(),
        };
        for b in objects.iter_mut().filter(|o| render::kind(o) == "Backend") {
            let port: u16 = render::name(b).rsplit('-').next().and_then(|p| p.parse().ok()).expect("Backend <service>-<port>");
            let role = role(&ServicePort { namespace: String::new(), service: String::new(), port }).expect("a router backend");
            let addr = daemon(role);
            b["spec"]["endpoints"][0]["ip"] = serde_json::json!({"address": addr.ip().to_string(), "port": addr.port()});
        }
    }
    for o in objects.iter_mut().filter(|o| render::kind(o) == "EnvoyExtensionPolicy") {
        for wasm in o["spec"]["wasm"].as_array_mut().unwrap() {
            if v == Variant::Daemons {
                match wasm["name"].as_str() {
                    Some("router") => wasm["config"] = serde_json::from_str(e2e::stack::ADD_ROUTER_CONFIG).unwrap(),
                    Some("add-response") => wasm["config"]["max_upload_bytes"] = Value::from(DAEMONS_MAX_UPLOAD),
                    _ => {}
                }
            }
            if wasm["name"] != "router" {
                continue;
            }
            match v {
                Variant::Rendered | Variant::Daemons | Variant::NoRateLimit | Variant::HealthPassive | Variant::HealthActive => {}
                Variant::WrongSha => wasm["code"]["http"]["sha256"] = Value::from("0".repeat(64)),
                Variant::Unreachable => {
                    let url = wasm["code"]["http"]["url"].as_str().unwrap().replacen(".svc.cluster.local/", ".svc.cluster.local:81/", 1);
                    wasm["code"]["http"]["url"] = Value::from(url);
                }
            }
        }
    }
    objects
}

static CURRENT: Mutex<Option<(Variant, Arc<EnvoyGateway>)>> = Mutex::new(None);

fn gateway(v: Variant) -> Arc<EnvoyGateway> {
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((cv, eg)) = cur.as_ref() {
        if *cv == v {
            return eg.clone();
        }
        if health_json(*cv).is_some() && health_json(v).is_some() {
            // Only the health configuration changes: live, as on a cluster.
            let eg = eg.clone();
            eg.update(&objects_for(v));
            wait_health_live(&eg, v);
            *cur = Some((v, eg.clone()));
            return eg;
        }
    }
    // Stop the previous one first: same ports.
    *cur = None;
    let ports = [render::port("PORT_HTTP"), render::port("PORT_HTTPS")];
    let eg = EnvoyGateway::start(&objects_for(v), &ports).unwrap_or_else(|e| panic!("Envoy Gateway ({v:?}):\n{e}"));
    let eg = Arc::new(eg);
    *cur = Some((v, eg.clone()));
    eg
}

/// Waits until Envoy (its active configuration, not a warming one) answers probes on both
/// listeners as variant `v`'s render says: by itself on exactly its health paths where the
/// answers are fixed, else by the health filter with the rendered configuration.
fn wait_health_live(eg: &EnvoyGateway, v: Variant) {
    let objects = objects_for(v);
    let fixed: Vec<String> = objects
        .iter()
        .filter(|o| render::kind(o) == "HTTPRoute" && render::name(o) == render::probes_route())
        .flat_map(|r| r["spec"]["rules"][0]["matches"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["path"]["value"].as_str().map(String::from))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let filter = |section: &str| {
        render::policies_on(&objects, section)
            .iter()
            .flat_map(|p| p["spec"]["wasm"].as_array().cloned().unwrap_or_default())
            .find(|w| w["name"] == "health")
            .map(|w| w["config"].clone())
    };
    let want = [(fixed.clone(), filter("https")), (fixed, filter("http"))];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let dump = eg.config_dump();
        let live = ["PORT_HTTPS", "PORT_HTTP"].map(|p| live_health(&dump, render::port(p)));
        if live == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{v:?}: probes answered as {live:?} after 60 s, want {want:?}:\n{}",
            gateway::eg::tail(&eg.log(), 40)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn key(name: &str) -> String {
    format!("{}/{name}", world().namespace)
}

fn https() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, render::port("PORT_HTTPS")))
}

/// A plain-text door to the HTTPS listener (HTTP/1.x; `h2` ALPN for HTTP/2).
fn door(proto: Proto) -> u16 {
    static DOORS: OnceLock<(u16, u16)> = OnceLock::new();
    let (h1, h2) = *DOORS.get_or_init(|| {
        let ca = &world().ca;
        (
            tls::Tunnel::spawn(https(), DOMAIN, tls::client_config(ca, &["http/1.1"])).port,
            tls::Tunnel::spawn(https(), DOMAIN, tls::client_config(ca, &["h2"])).port,
        )
    });
    if proto == Proto::Http2 { h2 } else { h1 }
}

/// Sends `req` over TLS and returns (status, backend that saw it or "none", answer body).
fn send(req: &Req) -> Result<(u16, String, String), String> {
    send_answer(req).map(|(a, backend)| (a.status, backend, a.text()))
}

/// [`send`] with the whole answer: (answer, the backend it reached or "none").
fn send_answer(req: &Req) -> Result<(e2e::edge::Answer, String), String> {
    let w = world();
    for b in w.backends.values() {
        b.take();
    }
    let a = e2e::edge::send(door(req.proto), req)?;
    let mut seen: Vec<String> = Vec::new();
    for (n, b) in &w.backends {
        for _ in b.take() {
            seen.push(n.clone());
        }
    }
    let backend = match seen.len() {
        0 => "none".to_string(),
        1 => seen.remove(0),
        _ => return Err(format!("{} reached several backends: {seen:?}", req.target)),
    };
    Ok((a, backend))
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg().into()) }
}

// ---- item: Envoy Gateway accepts the rendered objects

fn statuses_accepted() -> Result<(), Failed> {
    let w = world();
    let eg = gateway(Variant::Rendered);
    let gc = render::value("GATEWAY_CLASS");
    let s = eg.wait_status("GatewayClass", &format!("/{gc}"), "Accepted", |s| status::all_true(s, "Accepted"));
    check(status::all_true(&s, "Accepted"), || format!("GatewayClass: {s}"))?;
    // `Programmed` stays False with `AddressNotAssigned` on the Host provider (no Service, no
    // address): not asserted.
    let s = eg.wait_status("Gateway", &key(&w.name), "Accepted", |s| status::all_true(s, "Accepted"));
    let listeners = s["listeners"].as_array().cloned().unwrap_or_default();
    check(listeners.len() == 2, || format!("Gateway listeners: {s}"))?;
    for l in &listeners {
        for c in ["Accepted", "Programmed", "ResolvedRefs"] {
            check(status::all_true(l, c), || format!("Gateway listener {} not {c}: {}", l["name"], serde_yaml_ng::to_string(l).unwrap()))?;
        }
    }
    for r in w.rendered.iter().filter(|o| render::kind(o) == "HTTPRoute") {
        let n = render::name(r);
        let s = eg.wait_status("HTTPRoute", &key(n), "Accepted", |s| status::all_true(s, "Accepted"));
        check(status::all_true(&s, "ResolvedRefs"), || format!("HTTPRoute {n} refs: {}", serde_yaml_ng::to_string(&s).unwrap()))?;
    }
    for b in w.objects.iter().filter(|o| render::kind(o) == "Backend") {
        let n = render::name(b);
        eg.wait_status("Backend", &key(n), "Accepted", |s| status::all_true(s, "Accepted"));
    }
    // The standalone shim (src/eg.rs) must apply too, or the Wasm cache is unreachable.
    eg.wait_status("EnvoyPatchPolicy", &key("standalone-wasm-cluster-ca"), "Programmed", |s| status::all_true(s, "Programmed"));
    for k in ["EnvoyExtensionPolicy", "ClientTrafficPolicy", "BackendTrafficPolicy"] {
        for p in w.rendered.iter().filter(|o| render::kind(o) == k) {
            let n = render::name(p);
            let s = eg.wait_status(k, &key(n), "Accepted", |s| !status::conditions(s).is_empty());
            check(status::all_true(&s, "Accepted"), || format!("{k} {n}: {:?}", status::conditions(&s)))?;
        }
    }
    Ok(())
}

// ---- the .wasm delivered as on a cluster

/// The Wasm filters of the HTTPS listener's HTTP connection manager, in order: (name,
/// root_id, remote code sha256, remote URI).
fn wasm_chain(dump: &Value, port: u16) -> Vec<(String, String, String, String)> {
    hcm_filters(dump, port)
        .iter()
        .filter(|f| f["typed_config"]["@type"].as_str().is_some_and(|t| t.ends_with("wasm.v3.Wasm")))
        .map(|f| {
            let c = &f["typed_config"]["config"];
            let remote = &c["vm_config"]["code"]["remote"];
            (
                f["name"].as_str().unwrap_or("").to_string(),
                c["root_id"].as_str().unwrap_or("").to_string(),
                remote["sha256"].as_str().unwrap_or("").to_string(),
                remote["http_uri"]["uri"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every listener config of the dump (static and dynamic, active state).
fn listeners(dump: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for c in dump["configs"].as_array().into_iter().flatten() {
        for l in c["dynamic_listeners"].as_array().into_iter().flatten() {
            if l.get("active_state").is_some() {
                out.push(&l["active_state"]["listener"]);
            }
        }
    }
    out
}

fn listener_on(dump: &Value, port: u16) -> Option<&Value> {
    listeners(dump).into_iter().find(|l| l["address"]["socket_address"]["port_value"].as_u64() == Some(port as u64))
}

fn hcm(dump: &Value, port: u16) -> Value {
    let l = listener_on(dump, port).unwrap_or_else(|| panic!("no listener on {port}"));
    for fc in l["filter_chains"].as_array().into_iter().flatten().chain(l.get("default_filter_chain")) {
        for f in fc["filters"].as_array().into_iter().flatten() {
            if f["name"] == "envoy.filters.network.http_connection_manager" {
                return f["typed_config"].clone();
            }
        }
    }
    panic!("no HTTP connection manager on {port}")
}

fn hcm_filters(dump: &Value, port: u16) -> Vec<Value> {
    hcm(dump, port)["http_filters"].as_array().cloned().unwrap_or_default()
}

/// The virtual host of the domain in the route configuration of the listener on `port`.
fn vhost(dump: &Value, port: u16) -> Value {
    let h = hcm(dump, port);
    let rc_name = h["rds"]["route_config_name"].as_str().expect("RDS route config name");
    let rc = dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["dynamic_route_configs"].as_array().into_iter().flatten())
        .find(|r| r["route_config"]["name"] == rc_name)
        .map(|r| r["route_config"].clone())
        .unwrap_or_else(|| panic!("no route configuration {rc_name}"));
    rc["virtual_hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["domains"].as_array().is_some_and(|d| d.iter().any(|d| d == DOMAIN)))
        .cloned()
        .unwrap_or_else(|| panic!("no virtual host for {DOMAIN} in {rc_name}"))
}

/// How Envoy answers probes on the listener on `port`: the exact paths it answers with a
/// direct 200 itself, and the health filter's configuration if one runs there.
fn live_health(dump: &Value, port: u16) -> (Vec<String>, Option<Value>) {
    let mut fixed: Vec<String> = vhost(dump, port)["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["direct_response"]["status"] == 200)
        .filter_map(|r| r["match"]["path"].as_str().map(String::from))
        .collect();
    fixed.sort();
    fixed.dedup();
    let filter = hcm_filters(dump, port).iter().find_map(|f| {
        let c = &f["typed_config"]["config"];
        (c["root_id"] == "health").then(|| c["configuration"]["value"].as_str().and_then(|t| serde_json::from_str::<Value>(t).ok())).flatten()
    });
    (fixed, filter)
}

fn wasm_fetched_and_pinned() -> Result<(), Failed> {
    let w = world();
    let eg = gateway(Variant::Rendered);
    let served = w.files.served();
    let sources = render::wasm_sources(&w.rendered);
    for (name, url, _) in &sources {
        let path = format!("/{}", url.rsplit('/').next().unwrap());
        check(served.get(&path).copied().unwrap_or(0) >= 1, || format!("{name}: {path} never fetched from the filter server; served: {served:?}"))?;
    }
    // On each listener the filters of the policies attached to it (to the listener or to its
    // routes), one per policy entry, each pinned to the rendered SHA-256, fetched by Envoy
    // from Envoy Gateway's cache (not from the filter server): the router and add_response on
    // HTTPS, none on HTTP (where cert-manager's HTTP-01 solver must be reached without the
    // router, and where probes, as on HTTPS, get Envoy's own answer in passive health). Which
    // of them run on which route, in what order, is the static file's comparison
    // (`static_file_routes_and_filters_as_generated`).
    for (section, port) in [("https", "PORT_HTTPS"), ("http", "PORT_HTTP")] {
        let chain = wasm_chain(&eg.config_dump(), render::port(port));
        let on = render::wasm_sources_on(&w.rendered, section);
        let mut want: Vec<&str> = on.iter().map(|(_, _, s)| s.as_str()).collect();
        let mut got: Vec<&str> = chain.iter().map(|(_, _, s, _)| s.as_str()).collect();
        want.sort();
        got.sort();
        check(got == want && (section == "http" || !want.is_empty()), || {
            format!("Wasm filters on the {section} listener {chain:#?}, want its policies' {on:#?}")
        })?;
        for (n, _, _, uri) in &chain {
            check(uri.contains(gateway::files::EG_WASM_HOST), || format!("{n} fetched by Envoy from {uri}, not from Envoy Gateway's cache"))?;
        }
    }
    Ok(())
}

// ---- behaviours through the generated configuration

fn health_on_root() -> Result<(), Failed> {
    gateway(Variant::Rendered);
    for proto in [Proto::Http11, Proto::Http2] {
        let (st, b, body) = send(&Req::new("GET", "/").over(proto))?;
        check(st == 200 && b == "none", || format!("{proto:?} GET /: {st} via {b}: {body}"))?;
    }
    Ok(())
}

fn routes_and_refusals() -> Result<(), Failed> {
    gateway(Variant::Rendered);
    let cases: Vec<(Req, u16, &str)> = vec![
        (Req::new("GET", &format!("/ipfs/{CID0}/dir/file.txt")), 200, "gateway"),
        (Req::new("HEAD", &format!("/ipfs/{CID1}")), 200, "gateway"),
        (Req::new("GET", "/ipns/example.org/index.html"), 200, "gateway"),
        (Req::new("POST", "/api/v0/version"), 200, "kubo"),
        (Req::new("POST", &format!("/api/v0/cat?arg={CID0}")), 200, "kubo"),
        (Req::new("POST", "/api/v0/pin/ls"), 200, "proxy"),
        (Req::new("GET", "/id"), 200, "rest"),
        (Req::new("GET", "/pins"), 200, "rest"),
        // A client's own mark is replaced by the router's decision.
        (Req::new("POST", "/api/v0/version").header("x-ipfs-edge-backend", "proxy"), 200, "kubo"),
        // Refusals at the edge: nothing reaches a backend.
        (Req::new("POST", "/api/v0/shutdown"), 403, "none"),
        (Req::new("POST", &format!("/api/v0/pin/add?arg={CID0}")), 401, "none"),
        (Req::new("GET", "/api/v0/version"), 405, "none"),
        // A root that is no CID: Kubo's gateway judges it on the native read route; with an
        // escape (one path normalisation keeps) the read is the router's, which refuses it.
        (Req::new("GET", "/ipfs/not-a-cid"), 400, "gateway"),
        (Req::new("GET", "/ipfs/not%20a%20cid"), 400, "none"),
        (Req::new("POST", "/peers"), 403, "none"),
    ];
    let mut bad = Vec::new();
    for proto in [Proto::Http10, Proto::Http11, Proto::Http2] {
        for (req, st, want) in &cases {
            let mut req = Req::new(&req.method, &req.target).over(proto);
            for (k, v) in &cases.iter().find(|(r, _, _)| r.target == req.target).unwrap().0.headers {
                req = req.header(k, v);
            }
            // What the real daemon answers a routed request depends on what it holds (a
            // CID no peer has: the tap's own 504; a DNSLink name: 500 without DNS here); what
            // the edge decides is where it went, and the status of every refusal.
            match send(&req) {
                Ok((s, b, _)) if b == *want && (*want != "none" || s == *st) => {}
                Ok((s, b, body)) => bad.push(format!("{proto:?} {} {}: {s} via {b} (want {st} via {want}) {body}", req.method, req.target)),
                Err(e) => bad.push(format!("{proto:?} {} {}: {e}", req.method, req.target)),
            }
        }
    }
    check(bad.is_empty(), || bad.join("\n"))
}

fn http_redirects_to_https() -> Result<(), Failed> {
    gateway(Variant::Rendered);
    let port = render::port("PORT_HTTP");
    let path = format!("/ipfs/{CID0}?x=1");
    let a = e2e::edge::send(port, &Req::new("GET", &path))?;
    check(a.status == 301, || format!("http GET: {} {}", a.status, a.text()))?;
    check(a.header("location") == Some(&format!("https://{DOMAIN}{path}")), || format!("Location: {:?}", a.header("location")))?;
    check(world().backends.values().all(|b| b.take().is_empty()), || "the redirect reached a backend".into())
}

fn tls_with_the_test_certificate() -> Result<(), Failed> {
    gateway(Variant::Rendered);
    let ca = &world().ca;
    let h2 = tls::handshake(https(), DOMAIN, tls::client_config(ca, &["h2", "http/1.1"]))?;
    check(h2.as_deref() == Some("h2"), || format!("ALPN h2 offered, got {h2:?}"))?;
    let h1 = tls::handshake(https(), DOMAIN, tls::client_config(ca, &["http/1.1"]))?;
    check(h1.as_deref() == Some("http/1.1"), || format!("ALPN http/1.1 offered, got {h1:?}"))?;
    // A certificate the client does not trust is refused (the test CA is the one served).
    let other = std::env::temp_dir().join(format!("edge-gateway-other-{}", std::process::id()));
    std::fs::create_dir_all(&other).unwrap();
    let (_, other_ca) = render::tls_secrets(&world().objects, &other);
    let r = tls::handshake(https(), DOMAIN, tls::client_config(&other_ca, &["http/1.1"]));
    check(r.is_err(), || "a client trusting another certificate completed the handshake".into())
}

fn rate_limit_on_the_api_routes() -> Result<(), Failed> {
    gateway(Variant::Rendered);
    let limit: u32 = render::value("RATE_LIMIT_PER_MINUTE").parse().unwrap();
    let mut limited = None;
    // Up to twice the limit: the bucket refills while the run goes (the earlier trials' calls
    // took tokens from it, and a refill can fall inside this loop), but never by a whole
    // bucket per request.
    for i in 0..=2 * limit {
        let (a, b) = send_answer(&Req::new("POST", "/api/v0/version"))?;
        // Answers look like Kubo's: Envoy's rate-limit headers are off
        // (ClientTrafficPolicy `disableRateLimitHeaders`).
        let extra: Vec<&String> = a.headers.iter().map(|(k, _)| k).filter(|k| k.starts_with("x-ratelimit")).collect();
        check(extra.is_empty(), || format!("request {i}: {} answer with {extra:?}", a.status))?;
        let (st, body) = (a.status, a.text());
        match st {
            200 if b == "kubo" => {}
            429 => {
                check(b == "none", || "a rate-limited request reached a backend".into())?;
                limited = Some((i, body));
                break;
            }
            _ => return Err(format!("request {i}: {st} via {b}: {body}").into()),
        }
    }
    check(limited.is_some(), || format!("{} requests in a row passed; the limit is {limit} a minute", 2 * limit + 1))?;
    // The gateway route has no limit.
    let (st, b, _) = send(&Req::new("GET", &format!("/ipfs/{CID0}")))?;
    check(st != 429 && b == "gateway", || format!("gateway after the API limit: {st} via {b}"))
}

// ---- a broken code source

fn broken_source(v: Variant) -> Result<(), Failed> {
    let w = world();
    let eg = gateway(v);
    let policy = w.rendered.iter().find(|o| render::kind(o) == "EnvoyExtensionPolicy").unwrap();
    let n = render::name(policy);
    let s = eg.wait_status("EnvoyExtensionPolicy", &key(n), "a condition", |s| !status::conditions(s).is_empty());
    let conds = status::conditions(&s);
    eprintln!("{v:?}: EnvoyExtensionPolicy {n} status: {conds:?}");
    check(!status::all_true(&s, "Accepted"), || format!("{v:?}: policy Accepted anyway: {conds:?}"))?;
    // What a client gets: nothing the router decides reaches a backend without it.
    let mut answers = Vec::new();
    for req in [Req::new("GET", &format!("/ipfs/{CID0}/a%20b")), Req::new("POST", "/api/v0/shutdown"), Req::new("POST", "/")] {
        let r = send(&req);
        eprintln!("{v:?}: {} {} -> {r:?}", req.method, req.target);
        answers.push((req.target.clone(), r));
    }
    // Envoy Gateway fails the policy closed (the router is failOpen: false): every route the
    // policies target answers 500 itself and no filter runs.
    for (t, r) in &answers {
        match r {
            Ok((500, b, _)) if b == "none" => {}
            other => return Err(format!("{v:?}: {t}: {other:?}, want 500 from Envoy and no backend").into()),
        }
    }
    // Clean gateway reads need no filter: the native read route, which no policy targets,
    // still serves them; and probes still get their 200 from Envoy (passive health: the
    // proxy is up, which it is).
    let (st, b, _) = send(&Req::new("GET", &format!("/ipfs/{CID0}")))?;
    check(b == "gateway", || format!("{v:?}: a clean gateway read with the router's policy broken: {st} via {b}"))?;
    let (st, b, body) = send(&Req::new("GET", "/"))?;
    check(st == 200 && b == "none", || format!("{v:?}: a probe with the router's policy broken: {st} via {b}: {body}"))?;
    // The reason is in the status message: the checksum, or the failed download.
    let msg = conds.iter().find(|c| c.0 == "Accepted").map(|c| c.3.clone()).unwrap_or_default();
    let want = match v {
        Variant::WrongSha => "checksum",
        _ => "download failed",
    };
    check(msg.contains(want), || format!("{v:?}: status message {msg:?} does not say {want:?}"))
}


// ---- one source of truth: manifests/envoy/envoy.yaml against the generated configuration

/// The static file's facts (the listener `public`, its routes, its clusters by port).
fn static_facts() -> gateway::compare::Facts {
    use gateway::compare::*;
    let text = std::fs::read_to_string(e2e::repo_root().join(e2e::edge::CONFIG)).unwrap();
    let cfg: Value = serde_yaml_ng::from_str(&text).unwrap();
    let l = &cfg["static_resources"]["listeners"][0];
    let hcm = &l["filter_chains"][0]["filters"][0]["typed_config"];
    let mut facts = Facts::new();
    hcm_facts(l, hcm, &mut facts);
    let by_port = |p: u64| role(&ServicePort { namespace: String::new(), service: String::new(), port: p as u16 }).unwrap_or("?").to_string();
    let clusters = cfg["static_resources"]["clusters"].as_array().unwrap().clone();
    let role_of = |name: &str| {
        clusters
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"].as_u64())
            .map_or(format!("cluster {name}"), by_port)
    };
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"].as_array().unwrap().clone();
    route_facts(&routes, hcm, &role_of, &mut facts);
    for c in &clusters {
        cluster_facts(&role_of(c["name"].as_str().unwrap()), c, &mut facts);
    }
    facts
}

/// The same facts of the HTTPS listener Envoy Gateway generated.
fn generated_facts(dump: &Value) -> gateway::compare::Facts {
    use gateway::compare::*;
    let port = render::port("PORT_HTTPS");
    let l = listener_on(dump, port).expect("HTTPS listener").clone();
    let h = hcm(dump, port);
    let mut facts = Facts::new();
    hcm_facts(&l, &h, &mut facts);
    let mut clusters = Vec::new();
    let mut endpoints = Vec::new();
    for c in dump["configs"].as_array().unwrap() {
        for x in c["dynamic_active_clusters"].as_array().into_iter().flatten() {
            clusters.push(x["cluster"].clone());
        }
        for x in c["dynamic_endpoint_configs"].as_array().into_iter().flatten() {
            endpoints.push(x["endpoint_config"].clone());
        }
    }
    let w = world();
    let role_of = |name: &str| -> String {
        let port = endpoints
            .iter()
            .find(|e| e["cluster_name"] == name)
            .and_then(|e| e["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"].as_u64());
        port.and_then(|p| w.backends.iter().find(|(_, b)| b.port() as u64 == p).map(|(n, _)| n.clone())).unwrap_or(format!("cluster {name}"))
    };
    let vh = vhost(dump, port);
    route_facts(vh["routes"].as_array().unwrap(), &h, &role_of, &mut facts);
    let mut seen = std::collections::BTreeSet::new();
    for c in &clusters {
        let r = role_of(c["name"].as_str().unwrap_or(""));
        if w.backends.contains_key(&r) && seen.insert(r.clone()) {
            cluster_facts(&r, c, &mut facts);
        }
    }
    facts
}

/// Where the static file and the generated configuration differ: (fact prefix, or `route *
/// <path>` for one path under every mark; value in envoy.yaml, value generated, why). Values
/// must match exactly; any other difference fails, and so does an entry that no longer
/// matches anything (a fixed gap must leave the list).
const EXPECTED_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    // Envoy Gateway has no field for Envoy's Wasm failure_policy: a crashed VM is not
    // reloaded on a cluster (FAIL_RELOAD in envoy.yaml).
    ("wasm:health failure_policy", "FAIL_RELOAD", "FAIL_CLOSED (default)", "GAP: no failure_policy in EnvoyExtensionPolicy"),
    ("wasm:router failure_policy", "FAIL_RELOAD", "FAIL_CLOSED (default)", "GAP: no failure_policy in EnvoyExtensionPolicy"),
    ("wasm:add_response failure_policy", "FAIL_RELOAD", "FAIL_CLOSED (default)", "GAP: no failure_policy in EnvoyExtensionPolicy"),
    // On purpose.
    ("wasm:health fail_open", "false", "true", "the policy lets requests pass a broken health filter (failOpen)"),
    ("route health ", "answer 200", "to gateway, path rewritten to /ipfs/bafkqaaa, timeout 5s", "templates: a passed-on probe reads the empty block from Kubo (200 = Kubo serves), within a probe's 5 s; envoy.yaml answers itself"),
    // Passive health (the render's): Envoy Gateway's probes route answers a GET or HEAD of a
    // health path itself, whatever its mark, before any filter; envoy.yaml's health filter
    // answers it (the file serves every health mode), so its routes refuse what gets past.
    ("filters run on GET /", "wasm:health -> wasm:router", "none", "templates: the probes route (Envoy's direct response) where health's answers are fixed"),
    ("route * /", "answer 403", "answer 200", "the same: a GET of a health path is answered 200 by the probes route, by envoy.yaml's health filter before routing"),
    ("route (none) ", "answer 403", "answer 500", "both refuse an unmarked request; a Gateway API rule without a backend answers 500 on every implementation, envoy.yaml's direct answer is 403"),
    ("route other ", "answer 403", "answer 500", "the same for a mark no route knows"),
    // The exact paths (`/`, /api/v0/add) have routes of their own, on which their filters run:
    // there a mark the filters never give on that path is refused by both.
    ("route gateway /", "answer 403", "answer 500", "the same for a mark the filters never give on an exact path"),
    ("route health /api/v0/add", "answer 403", "answer 500", "the same"),
    ("route kubo /", "answer 403", "answer 500", "the same"),
    ("route proxy /", "answer 403", "answer 500", "the same"),
    ("route rest /", "answer 403", "answer 500", "the same"),
    ("wasm:health configuration", r#"{"paths": ["/"], "answer": "all"}"#, "{}", "the render's FILTER_CONFIG_HEALTH; envoy.yaml spells the defaults out"),
    (
        "wasm:router configuration",
        r#"{"preset": "read-only"}"#,
        r#"{"credentials":{"bearer_tokens":["sha256:<digest>"]},"health_paths":["/"]}"#,
        "the render's FILTER_CONFIG_ROUTER (envoy.yaml spells the default out) with the admin API token's digest, never the token (a new token each render: any digest), and the health filter's paths",
    ),
    ("wasm:add_response configuration", "{}", r#"{"max_upload_bytes":10737418240,"server":"kubo/0.42.0"}"#, "the deployer adds server and max_upload_bytes from values.env"),
    ("http filters but Wasm", "router.v3.Router", "local_ratelimit.v3.LocalRateLimit -> router.v3.Router", "the rate limit (BackendTrafficPolicy) runs after the Wasm filters; envoy.yaml has none"),
    ("listener per_connection_buffer_limit_bytes", "32768", "1048576", "BUFFER_LIMIT=1Mi deployed; envoy.yaml keeps Envoy Gateway's default 32 KiB, stricter, so the end-to-end tests prove no filter needs a body held"),
    ("backend ", "32768", "1048576", "the same, upstream"),
    ("backend ", "5s", "10s", "connect_timeout: Envoy Gateway's default 10 s"),
    ("normalize_path", "false", "true", "Envoy Gateway always normalises; tests/e2e replays the hostile corpus under both (envoy.yaml comment)"),
    ("merge_slashes", "false", "true", "the same"),
    ("path_with_escaped_slashes_action", "KEEP_UNCHANGED (default)", "UNESCAPE_AND_REDIRECT", "the same"),
];

/// `s` with every `sha256:<64 hex digits>` written `sha256:<digest>`.
fn digests_elided(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("sha256:") {
        let (head, tail) = rest.split_at(i + "sha256:".len());
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str("<digest>");
            rest = &tail[64..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn static_file_routes_and_filters_as_generated() -> Result<(), Failed> {
    let eg = gateway(Variant::Rendered);
    let (a, b) = (static_facts(), generated_facts(&eg.config_dump()));
    let diff = gateway::compare::diff(&a, &b);
    let expected = |(k, x, y): &(String, String, String)| {
        let y = digests_elided(y);
        // The list holds for every method probed (`route <mark> <path>`).
        let k = gateway::compare::METHODS.iter().fold(k.clone(), |k, m| k.replacen(&format!("route {m} "), "route ", 1));
        // `route * <path>`: that path whatever the mark, and no other path.
        let any_mark = k.strip_prefix("route ").and_then(|r| r.split_once(' ')).map(|(_, path)| format!("route * {path}"));
        EXPECTED_DIFFERENCES.iter().position(|(p, ex, ey, _)| (k.starts_with(p) || any_mark.as_deref() == Some(*p)) && x == ex && y == *ey)
    };
    let unexpected: Vec<String> =
        diff.iter().filter(|d| expected(d).is_none()).map(|(k, x, y)| format!("{k}\n    envoy.yaml: {x}\n    generated:  {y}")).collect();
    let used: Vec<usize> = diff.iter().filter_map(expected).collect();
    let stale: Vec<&str> = EXPECTED_DIFFERENCES.iter().enumerate().filter(|(i, _)| !used.contains(i)).map(|(_, e)| e.3).collect();
    check(unexpected.is_empty() && stale.is_empty(), || {
        format!("{} unexpected differences:\n{}\nlisted but no longer found: {stale:?}", unexpected.len(), unexpected.join("\n"))
    })
}

/// The router is in three EnvoyExtensionPolicies (one per set of routes), so Envoy Gateway
/// generates three router filters on the HTTPS listener. They must run the same module (code,
/// SHA-256, runtime). Envoy shares a VM between filters of the same `vm_config`, but Envoy
/// Gateway v1.9.0 names each policy's VM apart (`vm_id` `/<namespace>/<policy>/wasm/<index>`,
/// and an EnvoyExtensionPolicy has no field to set it): the router runs in three VMs per
/// worker, one per policy, each request in one of them. This trial shows both, and fails
/// when Envoy Gateway starts sharing them (the README's cost note is then out of date).
fn generated_router_filters_run_one_module_in_a_vm_per_policy() -> Result<(), Failed> {
    let eg = gateway(Variant::Rendered);
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(filters)) = m.get("http_filters") {
                    out.extend(filters.iter().filter(|f| f["typed_config"]["config"]["root_id"] == "router"));
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let dump = eg.config_dump();
    let mut routers = Vec::new();
    walk(&dump, &mut routers);
    let vms: Vec<Value> = routers.iter().map(|f| f["typed_config"]["config"]["vm_config"].clone()).collect();
    let ids: Vec<String> = vms.iter().map(|v| v["vm_id"].as_str().unwrap_or_default().to_string()).collect();
    eprintln!("router filters generated: {}, vm_ids {ids:?}", vms.len());
    check(vms.len() == 3, || format!("{} router filters in the dump, not one per policy", vms.len()))?;
    let module = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().map(|m| m.remove("vm_id"));
        v
    };
    check(vms.iter().all(|v| module(v) == module(&vms[0])), || format!("the router filters run different modules: {vms:?}"))?;
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    check(distinct.len() == 3, || format!("Envoy Gateway now shares router VMs ({ids:?}): update manifests/kubernetes/README.md's cost note"))
}

// ---- trailers end to end

/// A backend whose every answer is chunked and ends with an `X-Stream-Error` trailer, as
/// the cluster proxy ends an add that failed midway.
fn trailer_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut r = BufReader::new(c.try_clone().unwrap());
                    let mut w = c;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim().is_empty() {
                            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n7\r\n{\"a\":1}\r\n0\r\nX-Stream-Error: upstream failed midway\r\n\r\n");
                        }
                    }
                });
            }
        });
        addr
    })
}

fn trailers_reach_the_client() -> Result<(), Failed> {
    gateway(Variant::Daemons);
    let req = b"GET /id HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n";
    let r = e2e::http::exchange(door(Proto::Http11), req)?;
    check(r.status == 200 && r.body == b"{\"a\":1}", || format!("GET /id: {} {:?}", r.status, String::from_utf8_lossy(&r.body)))?;
    let t: Vec<(String, String)> = r.trailers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    check(t.contains(&("x-stream-error".into(), "upstream failed midway".into())), || format!("trailers: {t:?}; raw: {:?}", String::from_utf8_lossy(&r.raw)))
}


// ---- the shared end-to-end cases (tests/e2e/src/cases) through the generated configuration

/// The HTTPS listener Envoy Gateway configured, as the edge under test of the shared cases.
struct GatewayEdge(Arc<EnvoyGateway>);

impl e2e::cases::Edge for GatewayEdge {
    fn port(&self, proto: Proto) -> u16 {
        door(proto)
    }

    fn host(&self) -> String {
        DOMAIN.into()
    }

    fn url(&self) -> String {
        match render::port("PORT_HTTPS") {
            443 => format!("https://{DOMAIN}"),
            p => format!("https://{DOMAIN}:{p}"),
        }
    }

    fn ca_file(&self) -> Option<std::path::PathBuf> {
        Some(world().ca_file.clone())
    }

    fn max_upload_bytes(&self) -> u64 {
        DAEMONS_MAX_UPLOAD
    }

    fn log(&self) -> String {
        self.0.log()
    }
}

impl health::TappedEdge for GatewayEdge {
    fn taps(&self) -> Vec<&Recorder> {
        world().backends.values().collect()
    }
}

/// Runs a shared health case on the taps, the health filter configured as `v` says.
fn on_taps(v: Variant, case: fn(&dyn health::TappedEdge)) -> Result<(), Failed> {
    case(&GatewayEdge(gateway(v)));
    Ok(())
}

/// Runs a shared case against Envoy Gateway's edge in front of the daemons.
fn on_daemons(case: fn(&dyn e2e::cases::Edge)) -> Result<(), Failed> {
    case(&GatewayEdge(gateway(Variant::Daemons)));
    Ok(())
}

// ---- the hostile corpus under Envoy Gateway's path handling

const CORPUS: &str = include_str!("../../../filters/logic/tests/corpus/hostile.jsonl");

/// Every corpus row through the generated configuration, over its own protocol. Envoy
/// Gateway normalises paths before the filters (normalize_path, merge_slashes,
/// UNESCAPE_AND_REDIRECT), so the corpus's statuses (written for envoy.yaml) do not hold;
/// the policy must: whatever reaches a backend is what the router, with the rendered
/// configuration, allows for the request that backend received, and nothing reaches two.
fn hostile_corpus_policy_holds() -> Result<(), Failed> {
    let w = world();
    gateway(Variant::NoRateLimit);
    let eep = w.rendered.iter().find(|o| render::kind(o) == "EnvoyExtensionPolicy").unwrap();
    let router = eep["spec"]["wasm"].as_array().unwrap().iter().find(|x| x["name"] == "router").unwrap();
    let cfg = match &router["config"] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let policy = edge_logic::router::Policy::from_json(cfg.as_bytes()).map_err(|e| format!("router config {cfg}: {e}"))?;
    let (mut rows, mut reached, mut failures) = (0, 0, Vec::new());
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).unwrap();
        rows += 1;
        let proto = Proto::parse(row["http"].as_str().unwrap());
        let mut req = Req::new(row["method"].as_str().unwrap(), row["target"].as_str().unwrap()).over(proto);
        for h in row["headers"].as_array().unwrap() {
            req = req.header(h[0].as_str().unwrap(), h[1].as_str().unwrap());
        }
        for b in w.backends.values() {
            b.take();
        }
        let _ = e2e::edge::send(door(proto), &req);
        let seen: Vec<(String, e2e::recorder::Seen)> = w.backends.iter().flat_map(|(n, b)| b.take().into_iter().map(move |s| (n.clone(), s))).collect();
        match seen.as_slice() {
            [] => {}
            [(name, s)] => {
                reached += 1;
                let headers: Vec<(String, String)> = req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
                let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
                let again = edge_logic::router::classify(&policy, &edge_logic::router::Request { method: &s.method, path: s.target.as_bytes(), headers: &h });
                // A probe the health filter passed on reaches the gateway rewritten.
                let health_probe = name == "gateway" && s.target == "/ipfs/bafkqaaa";
                // A clean gateway read goes the native read route, without the router: the
                // root, the query and method-override headers are Kubo's gateway's to judge
                // (edge_logic::router::native_read).
                let native = name == "gateway" && edge_logic::router::native_read::is_native_read(&s.method, s.target.as_bytes());
                if !health_probe && !native && again.backend().map(|b| b.header_value()) != Some(name.as_str()) {
                    failures.push(format!("{}: {} {} reached {name}, which the policy does not allow ({again:?})", row["id"], s.method, s.target));
                }
            }
            many => failures.push(format!("{}: reached several backends: {:?}", row["id"], many.iter().map(|(n, _)| n).collect::<Vec<_>>())),
        }
    }
    eprintln!("hostile corpus through Envoy Gateway's configuration: {rows} rows, {reached} reached a backend");
    check(rows >= 300 && failures.is_empty(), || format!("{rows} rows; {} failures:\n{}", failures.len(), failures.join("\n")))
}

fn main() {
    if let Err(e) = gateway::ns::enter() {
        eprintln!("tests/gateway needs a network and mount namespace of its own: {e}");
        std::process::exit(1);
    }
    let mut args = Arguments::from_args();
    // One Envoy Gateway at a time, in the order below.
    args.test_threads = Some(1);
    let t = |name: &'static str, f: fn() -> Result<(), Failed>| Trial::test(name, f);
    let trials = vec![
        t("rendered_objects_are_accepted_by_envoy_gateway", statuses_accepted),
        t("wasm_is_fetched_from_the_filter_server_and_pinned", wasm_fetched_and_pinned),
        t("static_file_routes_and_filters_as_generated", static_file_routes_and_filters_as_generated),
        t("generated_router_filters_run_one_module_in_a_vm_per_policy", generated_router_filters_run_one_module_in_a_vm_per_policy),
        t("health_answers_on_root", health_on_root),
        t("router_routes_and_refusals_over_http_1_0_1_1_and_2", routes_and_refusals),
        t("http_redirects_to_https", http_redirects_to_https),
        t("tls_with_the_test_certificate", tls_with_the_test_certificate),
        t("rate_limit_on_the_api_routes", rate_limit_on_the_api_routes),
        t("health_passive_answers_probes_without_touching_a_backend", || on_taps(Variant::HealthPassive, health::passive_answers_probes_without_touching_a_backend)),
        t("health_active_mode_follows_a_backend_killed_and_restarted", || {
            deployer_active_health();
            on_taps(Variant::HealthActive, health::active_mode_follows_a_backend_killed_and_restarted)
        }),
        t("http_1_trailers_reach_the_client", trailers_reach_the_client),
        // The shared end-to-end cases, on the real daemons (one Envoy Gateway for all).
        t("add_through_the_cluster_answers_as_kubo", || on_daemons(add::answers_as_kubo)),
        t("the_unfixed_cluster_is_told_apart", || on_daemons(add::the_unfixed_cluster_is_told_apart)),
        t("only_hash_is_kubos_answer_and_pins_nothing", || on_daemons(add::only_hash_is_kubos_answer_and_pins_nothing)),
        t("kubo_rpc_client_cannot_tell_cluster_from_kubo", || on_daemons(client::kubo_rpc_client_cannot_tell_cluster_from_kubo)),
        t("progress_reaches_the_client_while_the_upload_is_still_going", || on_daemons(streaming::progress_reaches_the_client_while_the_upload_is_still_going)),
        t("an_add_longer_than_the_default_route_timeout_completes", || on_daemons(streaming::an_add_longer_than_the_default_route_timeout_completes)),
        t("uploads_over_the_limit_are_refused_and_reach_no_pin", || on_daemons(streaming::uploads_over_the_limit_are_refused_and_reach_no_pin)),
        t("hostile_corpus_nothing_forbidden_gets_through", hostile_corpus_policy_holds),
        t("wrong_sha256_refused", || broken_source(Variant::WrongSha)),
        t("unreachable_url_refused", || broken_source(Variant::Unreachable)),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop the last Envoy Gateway and wait for it (it would also stop when this process
    // ends and its stdin closes), then remove the files.
    drop(CURRENT.lock().unwrap_or_else(|e| e.into_inner()).take());
    let pid = std::process::id();
    let _ = std::fs::remove_file(std::env::temp_dir().join(format!("edge-gateway-hosts-{pid}")));
    for d in [format!("edge-gateway-render-{pid}"), format!("edge-gateway-other-{pid}")] {
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(d));
    }
    conclusion.exit();
}
