//! `deployer up` with the real Envoy Gateway controller (Kubernetes provider) watching the
//! test control plane: the conditions it reports on what `up` applied, and `deployer status`
//! telling them. One control plane and one Envoy Gateway for the whole binary
//! (tests/support/eg.rs), in a network and mount namespace of its own (tests/support/ns.rs).

mod support;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The filter server's address here (every test namespace's name resolves to it).
const FILES: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// What the test's stand-in for a cloud load balancer controller gives the Envoy Service.
const LB_IP: &str = "203.0.113.7";
/// The trials' namespaces.
const NAMESPACES: [&str; 2] = ["eg-accepts", "eg-broken"];

struct Env {
    server: &'static support::Server,
    bundle: support::Scratch,
    filters: support::Scratch,
    eg: support::eg::EnvoyGateway,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let server = support::server();
        let bundle = support::bundle();
        let filters = support::filters();
        support::eg::serve_files(SocketAddr::from((FILES, 80)), filters.path().to_path_buf());
        // Every test namespace's filter server name, before Envoy Gateway starts: Go's
        // resolver caches /etc/hosts for 5 s, so a name added later can go unresolved by
        // its Wasm fetches, which then fail, and Envoy Gateway judges nothing for as long
        // as they retry (the cause of earlier failures with nothing judged).
        for ns in NAMESPACES {
            support::ns::add_host(&format!("ipfs-cluster-filters.{ns}.svc.cluster.local"), FILES);
        }
        let manifest = bundle.path().join("envoy-gateway-v1.9.0.yaml");
        let kubeconfig = server.admin();
        let eg = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(support::eg::start(&kubeconfig, &manifest))
        })
        .join()
        .expect("starting Envoy Gateway");
        Env { server, bundle, filters, eg }
    })
}

fn deployer(ns: &str, args: &[&str]) -> Command {
    let e = env();
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployer"));
    c.arg("--kubeconfig").arg(e.server.admin()).args(["--namespace", ns, "--domain", &domain(ns)]);
    c.arg("--filters-dir").arg(e.filters.path());
    c.args(args);
    if args.first() == Some(&"up") {
        // No cert-manager in this binary: the Certificate is never judged, so the wait for
        // the controllers' verdicts runs to its bound: 30 s, room for Envoy Gateway's Wasm
        // fetch retries (about 6 s a module) should a fetch fail.
        c.arg("--bundle").arg(e.bundle.path()).args(["--timeout", "90", "--address-timeout", "1", "--controller-timeout", "30"]);
    }
    c
}

fn run(ns: &str, args: &[&str]) -> Output {
    let out = deployer(ns, args).output().expect("deployer runs");
    eprintln!("$ deployer {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    out
}

fn domain(ns: &str) -> String {
    format!("{ns}.example.test")
}

fn gvk(group: &str, version: &str, kind: &str) -> ApiResource {
    let mut ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let k = kind.to_lowercase();
    ar.plural = match k.strip_suffix("policy") {
        Some(p) => format!("{p}policies"),
        None if k.ends_with("class") => format!("{k}es"),
        None => format!("{k}s"),
    };
    ar
}

fn dynamic(c: &Client, ns: Option<&str>, ar: &ApiResource) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(c.clone(), ns, ar),
        None => Api::all_with(c.clone(), ar),
    }
}

/// The TLS Secret cert-manager would issue (no cert-manager runs in this binary): a
/// self-signed certificate for the domain, as the Gateway's certificateRefs name it.
async fn tls_secret(c: &Client, ns: &str) {
    let dir = support::scratch(&format!("tls-{ns}"));
    let (key, crt) = (dir.path().join("tls.key"), dir.path().join("tls.crt"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={}", domain(ns)))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{}", domain(ns)))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let b64 = |p: &Path| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap())
    };
    let pp = PatchParams::apply("ipfs-edge-tests");
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.patch(ns, &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let s = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "ipfs-cluster-tls", "namespace": ns},
        "data": {"tls.crt": b64(&crt), "tls.key": b64(&key)}});
    secrets.patch("ipfs-cluster-tls", &pp, &Patch::Apply(s)).await.unwrap();
}

/// Plays the cloud's load balancer controller for the Envoy Service Envoy Gateway made for
/// the Gateway of `ns`: an external address in its status, once the Service exists.
async fn give_gateway_address(c: &Client, ns: &str) {
    let svcs: Api<Service> = Api::namespaced(c.clone(), support::eg::NAMESPACE);
    let lp = ListParams::default()
        .labels(&format!("gateway.envoyproxy.io/owning-gateway-namespace={ns},gateway.envoyproxy.io/owning-gateway-name=ipfs-cluster"));
    let t0 = Instant::now();
    let svc = loop {
        if let Some(s) = svcs.list(&lp).await.unwrap().items.into_iter().next() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "Envoy Gateway made no Envoy Service for {ns}:\n{}", env().eg.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let name = svc.metadata.name.unwrap();
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}});
    svcs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

fn conditions(v: &Value) -> Vec<(String, String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                format!("{}: {}", c["reason"].as_str().unwrap_or_default(), c["message"].as_str().unwrap_or_default()),
            )
        })
        .collect()
}

fn is_true(v: &Value, ty: &str) -> bool {
    conditions(v).iter().any(|(t, s, _)| t == ty && s == "True")
}

/// Polls until `check` returns None; panics with the last state and Envoy Gateway's log.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let t0 = Instant::now();
    loop {
        let Some(state) = check().await else { return };
        if t0.elapsed() > Duration::from_secs(90) {
            let log = env().eg.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!("{what}: still {state}\nEnvoy Gateway's log (last lines):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn up_with_controller(c: &Client, ns: &str) {
    assert!(NAMESPACES.contains(&ns), "{ns}: not in NAMESPACES, so its filter server name does not resolve");
    tls_secret(c, ns).await;
    let out = run(ns, &["up", "--replicas", "1"]);
    assert!(out.status.success(), "up failed:\n{}", String::from_utf8_lossy(&out.stderr));
    // up's last wait ends on the controllers' verdicts: Envoy Gateway's are in its summary
    // (the Gateway judged: no address yet, as no load balancer has given one), and what no
    // controller judged is named.
    let (err, summary) = (String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("not judged yet: Certificate ipfs-cluster-tls"), "{err}\nenvoy-gateway's log:\n{}", support::eg::tail(&env().eg.log(), 40));
    assert!(summary.contains("✗ Gateway ipfs-cluster: Programmed False: AddressNotAssigned"), "{summary}");
    assert!(summary.contains("✓ EnvoyExtensionPolicy ipfs-cluster-filters: Accepted"), "{summary}");
    give_gateway_address(c, ns).await;
}

// The probes route on both listeners, its direct response resolved (passive health, the
// default: Envoy answers probes itself).
const ROUTES: [&str; 5] = ["ipfs-cluster-gateway", "ipfs-cluster-redirect", "ipfs-cluster-rest", "ipfs-cluster-rpc", "ipfs-cluster-probes"];
const POLICIES: [(&str, &str); 4] = [
    ("ClientTrafficPolicy", "ipfs-cluster"),
    ("BackendTrafficPolicy", "ipfs-cluster-api"),
    ("EnvoyExtensionPolicy", "ipfs-cluster-filters"),
    ("EnvoyExtensionPolicy", "ipfs-cluster-health"),
];

/// What is not yet as the controller should report it for everything `up` applied; None
/// when all is (read straight from the API, not through the deployer).
async fn not_accepted(c: &Client, ns: &str) -> Option<String> {
    let gc = dynamic(c, None, &gvk("gateway.networking.k8s.io", "v1", "GatewayClass")).get("envoy-gateway").await.unwrap();
    if !is_true(&gc.data["status"]["conditions"], "Accepted") {
        return Some(format!("GatewayClass: {:?}", conditions(&gc.data["status"]["conditions"])));
    }
    let gw = dynamic(c, Some(ns), &gvk("gateway.networking.k8s.io", "v1", "Gateway")).get("ipfs-cluster").await.unwrap();
    let st = &gw.data["status"];
    if !is_true(&st["conditions"], "Accepted") || !is_true(&st["conditions"], "Programmed") {
        return Some(format!("Gateway: {:?}", conditions(&st["conditions"])));
    }
    let listeners = st["listeners"].as_array().cloned().unwrap_or_default();
    if listeners.len() != 2 {
        return Some(format!("Gateway listeners: {listeners:?}"));
    }
    for l in &listeners {
        for t in ["Accepted", "ResolvedRefs", "Programmed"] {
            if !is_true(&l["conditions"], t) {
                return Some(format!("listener {}: {:?}", l["name"], conditions(&l["conditions"])));
            }
        }
    }
    for r in ROUTES {
        let o = dynamic(c, Some(ns), &gvk("gateway.networking.k8s.io", "v1", "HTTPRoute")).get(r).await.unwrap();
        let parents = o.data["status"]["parents"].as_array().cloned().unwrap_or_default();
        if parents.is_empty() || !parents.iter().all(|p| is_true(&p["conditions"], "Accepted") && is_true(&p["conditions"], "ResolvedRefs")) {
            return Some(format!("HTTPRoute {r}: {parents:?}"));
        }
    }
    for (k, n) in POLICIES {
        let o = dynamic(c, Some(ns), &gvk("gateway.envoyproxy.io", "v1alpha1", k)).get(n).await.unwrap();
        let anc = o.data["status"]["ancestors"].as_array().cloned().unwrap_or_default();
        if anc.is_empty() || !anc.iter().all(|a| is_true(&a["conditions"], "Accepted")) {
            return Some(format!("{k} {n}: {anc:?}"));
        }
    }
    None
}

fn status_json(ns: &str) -> Value {
    let out = run(ns, &["status", "--output", "json"]);
    assert!(out.status.success(), "status failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("status --output json: {e}"))
}

fn object<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("status lists no {kind} {name}: {report:#}"))
}

async fn the_controller_accepts_everything_up_applies() {
    let c = support::client(&env().server.admin()).await;
    let ns = "eg-accepts";
    up_with_controller(&c, ns).await;
    eventually("Envoy Gateway accepting everything up applied", || not_accepted(&c, ns)).await;
    let report = status_json(ns);
    eprintln!("{report:#}");
    let log = env().eg.log();
    let said: Vec<&str> = log.lines().filter(|l| l.contains(ns) && (l.contains("\terror\t") || l.contains("\twarn"))).collect();
    eprintln!("Envoy Gateway's errors and warnings about {ns}:\n{}", said.join("\n"));
    for (k, n) in [("GatewayClass", "envoy-gateway"), ("Gateway", "ipfs-cluster"), ("Listener", "ipfs-cluster/http"), ("Listener", "ipfs-cluster/https")]
        .into_iter()
        .chain(POLICIES)
        .chain([("HTTPRoute", "ipfs-cluster-redirect")])
    {
        let o = object(&report, k, n);
        assert_eq!(o["ready"], true, "{k} {n}: {o}");
    }
    assert!(object(&report, "Gateway", "ipfs-cluster")["detail"].as_str().unwrap().contains("Programmed"), "{report:#}");
    assert_eq!(report["gateway_addresses"], json!([LB_IP]));
    assert_eq!(report["filters_attached"], true);
    assert_eq!(report["peers"], json!({"desired": 1, "ready": 1, "cluster_peers": null}));
    // KWOK's pod addresses are loopback ones, which the EndpointSlice controller leaves
    // out: the routes to the API Service have no ready endpoint, and the controller says
    // so; status passes it on (on a cluster with real pod addresses they are ready).
    for r in ["ipfs-cluster-gateway", "ipfs-cluster-rest", "ipfs-cluster-rpc"] {
        let o = object(&report, "HTTPRoute", r);
        assert_eq!(o["ready"], false, "{o}");
        assert!(o["detail"].as_str().unwrap().contains("BackendsAvailable False: EndpointsNotFound"), "{o}");
    }
    // No cert-manager runs in this binary: the Certificate is pending, and says why.
    let cert = object(&report, "Certificate", "ipfs-cluster-tls");
    assert_eq!(cert["ready"], false);
    assert!(cert["detail"].as_str().unwrap().contains("not taken up by cert-manager"), "{cert}");
    assert_eq!(report["ready"], false);
}

/// Broken on purpose, after `up`: the API Service gone (every route to it points at a
/// missing Service) and the filters' policy pinned to a SHA-256 no file has (a value the
/// schema allows). `status` names each with the controller's own reason; `up` repairs both.
async fn a_broken_route_and_policy_show_in_status_with_the_controllers_reason() {
    let c = support::client(&env().server.admin()).await;
    let ns = "eg-broken";
    up_with_controller(&c, ns).await;
    eventually("Envoy Gateway accepting everything up applied", || not_accepted(&c, ns)).await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    svcs.delete("ipfs-cluster-api", &Default::default()).await.unwrap();
    let eeps = dynamic(&c, Some(ns), &gvk("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"));
    let mut wasm = eeps.get("ipfs-cluster-filters").await.unwrap().data["spec"]["wasm"].clone();
    let router = wasm.as_array_mut().unwrap().iter_mut().find(|w| w["rootID"] == "router").expect("the router in the filters' policy");
    router["code"]["http"]["sha256"] = json!("0".repeat(64));
    eeps.patch("ipfs-cluster-filters", &PatchParams::default(), &Patch::Merge(json!({"spec": {"wasm": wasm}}))).await.unwrap();
    let mut report = Value::Null;
    eventually("status reporting the broken route and policy", || {
        report = status_json(ns);
        let rpc = object(&report, "HTTPRoute", "ipfs-cluster-rpc").clone();
        let eep = object(&report, "EnvoyExtensionPolicy", "ipfs-cluster-filters").clone();
        async move {
            let broken = rpc["ready"] == false
                && rpc["detail"].as_str().unwrap().contains("ResolvedRefs False: BackendNotFound")
                && eep["ready"] == false
                && eep["detail"].as_str().unwrap().contains("Accepted False");
            (!broken).then(|| format!("{rpc} {eep}"))
        }
    })
    .await;
    eprintln!("{report:#}");
    let rpc = object(&report, "HTTPRoute", "ipfs-cluster-rpc")["detail"].as_str().unwrap().to_string();
    assert!(rpc.contains(&format!("{ns}/ipfs-cluster-api")), "the controller's message names the Service: {rpc}");
    let eep = object(&report, "EnvoyExtensionPolicy", "ipfs-cluster-filters")["detail"].as_str().unwrap().to_string();
    assert!(eep.to_lowercase().contains("checksum") || eep.contains("sha256"), "the controller's message says why: {eep}");
    // The text screen carries the same reasons.
    let text = String::from_utf8(run(ns, &["status"]).stdout).unwrap();
    assert!(text.contains(&format!("✗ HTTPRoute ipfs-cluster-rpc: {rpc}")) && text.contains(&eep), "{text}");
    assert!(report["pending"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains(&eep)), "{report:#}");
    // `up` puts back what it owns; the controller accepts it again.
    let out = run(ns, &["up", "--replicas", "1"]);
    assert!(out.status.success(), "up failed:\n{}", String::from_utf8_lossy(&out.stderr));
    eventually("Envoy Gateway accepting everything again", || not_accepted(&c, ns)).await;
}

fn block<F: std::future::Future<Output = ()>>(f: F) -> Result<(), libtest_mimic::Failed> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f);
    Ok(())
}

fn main() {
    if let Err(e) = support::ns::enter() {
        eprintln!("cannot enter a namespace of our own (root, or unprivileged user namespaces, are needed): {e}");
        std::process::exit(1);
    }
    let args = libtest_mimic::Arguments::from_args();
    let trials = vec![
        libtest_mimic::Trial::test("the_controller_accepts_everything_up_applies", || block(the_controller_accepts_everything_up_applies())),
        libtest_mimic::Trial::test("a_broken_route_and_policy_show_in_status_with_the_controllers_reason", || {
            block(a_broken_route_and_policy_show_in_status_with_the_controllers_reason())
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}
