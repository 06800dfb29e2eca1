//! cert-manager's real controllers (scripts/cert-manager.sh: the controllers of the module at
//! values.env's CERT_MANAGER_VERSION, Gateway API support on) with Pebble, Let's Encrypt's
//! test ACME server, against the test control plane (tests/support), on what `deployer up
//! --acme-server <Pebble>` applied; then the HTTP-01 data path through the Envoy that the real
//! Envoy Gateway configured in standalone mode (tests/gateway's harness), until Pebble has
//! validated and the Certificate is Ready.
//!
//! What is imitated, and only that (no kubelet, no pod network here):
//! - the solver pod: cert-manager creates it and KWOK reports it Running; the real acmesolver
//!   runs on the host with that pod's own arguments, in this binary's network namespace;
//! - the Service and the route's delivery to Envoy: Envoy Gateway runs on the File provider
//!   (no API server watch), so the solver HTTPRoute is read from the API server as
//!   cert-manager wrote it and handed to Envoy Gateway's file with the deployer's rendered
//!   objects, its Service backendRef pointed at the acmesolver by a Backend (what a Service's
//!   endpoints would do).
//!
//! Everything else is the real program: cert-manager decides, creates and deletes, Pebble
//! resolves the domain through pebble-challtestsrv's DNS (the domain -> 127.0.0.1) and
//! fetches the challenge on the Gateway's HTTP port, Envoy routes by Gateway API precedence.
//!
//! Runs in a network and mount namespace of its own (as tests/gateway, whose harness this
//! uses): Envoy Gateway's ports are fixed, the Gateway listens on port 80 as rendered, and
//! cert-manager's self-check resolves the domain through /etc/hosts, bind-mounted here. One
//! trial: one control plane, one cert-manager, one Pebble and one Envoy Gateway per binary.

mod support;

use gateway::eg::EnvoyGateway;
use gateway::render;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::Client;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The domain of the deployment (resolved to 127.0.0.1 by /etc/hosts here and by
/// pebble-challtestsrv for Pebble).
const DOMAIN: &str = "ipfs.edge.test";
/// Pebble and its DNS server: fixed ports, this network namespace is the binary's own.
const PEBBLE: &str = "127.0.0.1:14000";
const PEBBLE_MANAGEMENT: &str = "127.0.0.1:15000";
const CHALLTESTSRV_DNS: &str = "127.0.0.1:8053";
const CHALLTESTSRV_MANAGEMENT: &str = "127.0.0.1:8055";
const SOLVER_LABEL: &str = "acme.cert-manager.io/http01-solver=true";

fn main() {
    // Before any thread starts (unshare needs a single-threaded process).
    if let Err(e) = gateway::ns::enter() {
        eprintln!("cannot enter a network namespace of our own: {e}");
        std::process::exit(1);
    }
    gateway::ns::add_host(DOMAIN, Ipv4Addr::LOCALHOST);
    // tests/gateway's render runs this binary's deployer, not a fresh `cargo build`.
    std::env::set_var("DEPLOYER_BIN", env!("CARGO_BIN_EXE_deployer"));
    let args = Arguments::from_args();
    let trials = vec![Trial::test("pebble_issues_through_the_gateway_http_listener_with_the_solver_route_ahead_of_the_redirect", || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(issue())
    })];
    libtest_mimic::run(&args, trials).exit();
}

/// A child process killed when the thread that started it ends (the trial's) or when this
/// value is dropped; its output goes to `log`.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
        Proc { child, log }
    }

    fn log_tail(&self) -> String {
        gateway::eg::tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 40)
    }

    fn alive(&mut self, what: &str) -> Result<(), Failed> {
        match self.child.try_wait().unwrap() {
            None => Ok(()),
            Some(st) => Err(format!("{what} exited ({st}):\n{}", self.log_tail()).into()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `scripts/cert-manager.sh build`: (cert-manager's bin dir, Pebble's bin dir); built once.
fn binaries() -> (PathBuf, PathBuf) {
    let out = Command::new(support::repo_root().join("scripts/cert-manager.sh"))
        .arg("build")
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/cert-manager.sh runs");
    assert!(out.status.success(), "scripts/cert-manager.sh build failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let get = |k: &str| PathBuf::from(text.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_else(|| panic!("no {k} in {text:?}")));
    (get("CERT_MANAGER_BIN="), get("PEBBLE_BIN="))
}

fn script_line(arg: &str) -> String {
    let out = Command::new(support::repo_root().join("scripts/cert-manager.sh")).arg(arg).output().unwrap();
    assert!(out.status.success(), "scripts/cert-manager.sh {arg}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn wait_port(addr: &str, p: &mut Proc, what: &str) -> Result<(), Failed> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        p.alive(what)?;
        if Instant::now() > deadline {
            return Err(format!("{what} not listening on {addr} after 30 s:\n{}", p.log_tail()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Pebble's DNS (every name -> 127.0.0.1) and Pebble itself, validating HTTP-01 on the
/// Gateway's HTTP port.
fn pebble(bin: &Path, dir: &Path) -> Result<(Proc, Proc), Failed> {
    let mut dns = Proc::spawn(
        {
            let mut c = Command::new(bin.join("pebble-challtestsrv"));
            c.args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dnsserver", CHALLTESTSRV_DNS, "-management", CHALLTESTSRV_MANAGEMENT]);
            c.args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""]);
            c
        },
        dir.join("challtestsrv.log"),
    );
    wait_port(CHALLTESTSRV_MANAGEMENT, &mut dns, "pebble-challtestsrv")?;
    let cert = script_line("pebble-cert");
    let (cert, key) = cert.split_once(' ').unwrap();
    let config = json!({"pebble": {
        "listenAddress": PEBBLE,
        "managementListenAddress": PEBBLE_MANAGEMENT,
        "certificate": cert,
        "privateKey": key,
        // Where Pebble fetches http://<domain>/.well-known/acme-challenge/<token>: the
        // Gateway's HTTP listener (on the Host provider the listener port is the port).
        "httpPort": render::port("PORT_HTTP"),
        "tlsPort": 5001,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "retryAfter": {"authz": 1, "order": 1},
        "keyAlgorithm": "ecdsa",
        "profiles": {"default": {"description": "default", "validityPeriod": 7776000}},
    }});
    let file = dir.join("pebble.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let mut c = Command::new(bin.join("pebble"));
    c.arg("-config").arg(&file).args(["-dnsserver", CHALLTESTSRV_DNS]);
    // No random sleep before validating, no random nonce rejections: the run is about the
    // path, not about retries.
    c.env("PEBBLE_VA_NOSLEEP", "1").env("PEBBLE_WFE_NONCEREJECT", "0");
    let mut p = Proc::spawn(c, dir.join("pebble.log"));
    wait_port(PEBBLE, &mut p, "pebble")?;
    Ok((dns, p))
}

/// cert-manager's controllers with the configuration a user gives them for this deployer:
/// Gateway API support on (v1.21's `gatewayAPI.enabled`), every default controller.
fn cert_manager(bin: &Path, dir: &Path, kubeconfig: &Path) -> Proc {
    let config = json!({
        "apiVersion": "controller.config.cert-manager.io/v1alpha1",
        "kind": "ControllerConfiguration",
        "kubeConfig": kubeconfig,
        "clusterResourceNamespace": "cert-manager",
        "leaderElectionConfig": {"enabled": false},
        "gatewayAPI": {"enabled": true},
        "controllers": ["*"],
    });
    let file = dir.join("controller.yaml");
    std::fs::write(&file, config.to_string()).unwrap();
    let mut c = Command::new(bin.join("controller"));
    c.arg("--config").arg(&file);
    // Pebble's HTTPS listener has a certificate of Pebble's test CA: the controller trusts
    // it as a cluster trusts a private CA (Go reads SSL_CERT_FILE).
    c.env("SSL_CERT_FILE", script_line("pebble-ca"));
    Proc::spawn(c, dir.join("cert-manager.log"))
}

fn ar(g: &str, v: &str, k: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(g, v, k))
}

fn condition<'a>(o: &'a Value, ty: &str) -> Option<&'a Value> {
    o["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == ty)
}

fn ready(o: &Value) -> bool {
    condition(o, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Polls `f` until it gives a value; on timeout the error names `what` and the last
/// thing seen, and cert-manager's log tail.
async fn until<T, F, Fut>(what: &str, secs: u64, cm: &mut Proc, mut f: F) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        cm.alive("cert-manager's controller")?;
        match f().await {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() > deadline => {
                return Err(format!("{what}: not within {secs} s; last seen: {last}\ncert-manager's log:\n{}", cm.log_tail()).into())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

async fn list(c: &Client, ns: &str, r: &ApiResource, labels: Option<&str>) -> Vec<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, r);
    let lp = labels.map_or_else(ListParams::default, |l| ListParams::default().labels(l));
    api.list(&lp).await.map(|l| l.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect()).unwrap_or_default()
}

async fn get(c: &Client, ns: &str, r: &ApiResource, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, r);
    api.get_opt(name).await.ok().flatten().map(|o| serde_json::to_value(o).unwrap())
}

/// Gateway API HTTPRoute precedence of one match (the spec's order for matches of the same
/// hostname on the same listener, highest first): an Exact path, then the longest prefix,
/// then a method, then the most header matches, then the most query matches. Ties go to the
/// oldest route, then by name; none of the routes here tie.
type Rank = (bool, usize, bool, usize, usize);

fn precedence(m: &Value) -> Rank {
    let path = &m["path"];
    let ty = path["type"].as_str().unwrap_or("PathPrefix");
    let value = path["value"].as_str().unwrap_or("/");
    let n = |k: &str| m[k].as_array().map_or(0, |a| a.len());
    (ty == "Exact", if ty == "PathPrefix" { value.len() } else { 0 }, m.get("method").is_some(), n("headers"), n("queryParams"))
}

/// The first route (by precedence) whose matches take `path` on `hostname`: what the Gateway
/// API says an implementation must pick among `routes` attached to one listener.
fn winner<'a>(routes: &'a [Value], hostname: &str, path: &str) -> Option<&'a str> {
    let mut best: Option<(Rank, &str)> = None;
    for r in routes {
        if !r["spec"]["hostnames"].as_array().is_some_and(|h| h.iter().any(|h| h == hostname)) {
            continue;
        }
        for rule in r["spec"]["rules"].as_array().into_iter().flatten() {
            for m in rule["matches"].as_array().into_iter().flatten() {
                let v = m["path"]["value"].as_str().unwrap_or("/");
                // A prefix matches whole path elements ("/a" takes "/a" and "/a/b", not "/ab").
                let p = v.trim_end_matches('/');
                let takes = match m["path"]["type"].as_str().unwrap_or("PathPrefix") {
                    "Exact" => path == v,
                    _ => p.is_empty() || path == p || path.starts_with(&format!("{p}/")),
                };
                if takes && best.is_none_or(|(p, _)| precedence(m) > p) {
                    best = Some((precedence(m), r["metadata"]["name"].as_str().unwrap_or("")));
                }
            }
        }
    }
    best.map(|(_, n)| n)
}

/// The route as a user would write it (what Envoy Gateway's file takes): no server fields.
fn as_written(o: &Value) -> Value {
    json!({
        "apiVersion": o["apiVersion"],
        "kind": o["kind"],
        "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"], "labels": o["metadata"]["labels"]},
        "spec": o["spec"],
    })
}

/// One plain HTTP/1.1 GET on the Gateway's HTTP port with `Host: DOMAIN`.
fn http_get(path: &str) -> std::io::Result<e2e::http::Response> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n");
    e2e::http::exchange(render::port("PORT_HTTP"), req.as_bytes())
}

async fn issue() -> Result<(), Failed> {
    let t0 = Instant::now();
    let (cm_bin, pebble_bin) = binaries();
    let dir = support::scratch("cert-manager");
    let (_dns, mut pebble) = pebble(&pebble_bin, dir.path())?;
    let server = support::server();
    let c = support::client(&server.admin()).await;
    let mut cm = cert_manager(&cm_bin, dir.path(), &server.admin());
    let (ns, name) = (render::value("NAMESPACE"), render::value("NAME"));
    // The polls below are `move` closures over shared references (copied into each future).
    let (c, ns, name) = (&c, ns.as_str(), name.as_str());
    eprintln!("cert-manager test: Pebble, the control plane and cert-manager started in {:.1} s", t0.elapsed().as_secs_f64());

    // `up` with the Issuer pointed at Pebble (the render below uses the same namespace and
    // name: values.env's).
    let bundle = support::bundle();
    let filters = support::filters();
    let acme = format!("https://{PEBBLE}/dir");
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("--kubeconfig")
        .arg(server.admin())
        .args(["up", "--domain", DOMAIN, "--acme-server", &acme, "--replicas", "1", "--timeout", "90", "--address-timeout", "1", "--controller-timeout", "1"])
        .arg("--bundle")
        .arg(bundle.path())
        .arg("--filters-dir")
        .arg(filters.path())
        .output()
        .expect("deployer runs");
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("deployer up failed ({}):\n{err}", out.status).into());
    }

    // The Issuer registers an account with Pebble.
    let issuers = &ar("cert-manager.io", "v1", "Issuer");
    let issuer_name = &format!("{name}-acme");
    let issuer = until("the Issuer becomes Ready", 60, &mut cm, move || async move {
        let i = get(c, ns, issuers, issuer_name).await.ok_or("no Issuer")?;
        if ready(&i) { Ok(i) } else { Err(format!("{}", i["status"])) }
    })
    .await?;
    let reason = condition(&issuer, "Ready").unwrap()["reason"].clone();
    if reason != "ACMEAccountRegistered" {
        return Err(format!("Issuer Ready for another reason: {reason}").into());
    }
    if !issuer["status"]["acme"]["uri"].as_str().unwrap_or("").starts_with(&format!("https://{PEBBLE}/")) {
        return Err(format!("the account is not Pebble's: {}", issuer["status"]["acme"]).into());
    }
    pebble.alive("pebble")?;

    // The Certificate makes a CertificateRequest, its Order and the HTTP-01 Challenge.
    let orders = &ar("acme.cert-manager.io", "v1", "Order");
    let challenges = &ar("acme.cert-manager.io", "v1", "Challenge");
    let order = until("an Order for the Certificate", 60, &mut cm, move || async move {
        list(c, ns, orders, None).await.into_iter().next().ok_or_else(|| "no Order".to_string())
    })
    .await?;
    if order["spec"]["dnsNames"] != json!([DOMAIN]) {
        return Err(format!("Order for {}", order["spec"]["dnsNames"]).into());
    }
    let challenge = until("the HTTP-01 Challenge", 60, &mut cm, move || async move {
        list(c, ns, challenges, None).await.into_iter().find(|ch| ch["spec"]["token"].is_string()).ok_or_else(|| "no Challenge".to_string())
    })
    .await?;
    if challenge["spec"]["type"] != "HTTP-01" || challenge["spec"]["dnsName"] != DOMAIN {
        return Err(format!("Challenge {}", challenge["spec"]).into());
    }
    let token = challenge["spec"]["token"].as_str().unwrap().to_string();
    let key = challenge["spec"]["key"].as_str().unwrap().to_string();

    // The solver's HTTPRoute: on the deployer's Gateway, its HTTP listener, for the domain,
    // the token's exact path to the solver's Service.
    let routes = &ar("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let solver_route = until("the solver's HTTPRoute", 60, &mut cm, move || async move {
        list(c, ns, routes, Some(SOLVER_LABEL)).await.into_iter().next().ok_or_else(|| "no HTTPRoute labelled as the solver's".to_string())
    })
    .await?;
    let want_parent = json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name, "namespace": ns, "sectionName": "http"}]);
    if solver_route["spec"]["parentRefs"] != want_parent {
        return Err(format!("solver route parentRefs {} (want {want_parent})", solver_route["spec"]["parentRefs"]).into());
    }
    if solver_route["spec"]["hostnames"] != json!([DOMAIN]) {
        return Err(format!("solver route hostnames {}", solver_route["spec"]["hostnames"]).into());
    }
    let challenge_path = format!("/.well-known/acme-challenge/{token}");
    let solver_name = solver_route["metadata"]["name"].as_str().unwrap().to_string();
    let backend = &solver_route["spec"]["rules"][0]["backendRefs"][0];
    let solver_service = backend["name"].as_str().ok_or("solver route without a backendRef")?.to_string();
    // By Gateway API precedence, among the routes of the HTTP listener read back from the
    // API server: the challenge path goes to the solver, any other path to the redirect.
    let redirect = get(c, ns, routes, &format!("{name}-redirect")).await.ok_or("no redirect route")?;
    if redirect["spec"]["parentRefs"][0]["sectionName"] != "http" {
        return Err(format!("the redirect is not on the http listener: {}", redirect["spec"]["parentRefs"]).into());
    }
    let on_http = [redirect.clone(), solver_route.clone()];
    let to_challenge = winner(&on_http, DOMAIN, &challenge_path);
    let to_other = winner(&on_http, DOMAIN, "/.well-known/acme-challenge/other");
    if to_challenge != Some(solver_name.as_str()) || to_other != Some(&format!("{name}-redirect")) {
        return Err(format!("precedence: challenge -> {to_challenge:?}, another path -> {to_other:?}").into());
    }
    eprintln!("cert-manager test: Issuer Ready, Order, Challenge and solver route after {:.1} s", t0.elapsed().as_secs_f64());

    // The solver pod cert-manager created (KWOK reports it Running; nothing runs in it): its
    // arguments, for the real acmesolver on the host.
    let pods: &Api<Pod> = &Api::namespaced(c.clone(), ns);
    let pod = until("the solver pod", 60, &mut cm, move || async move {
        pods.list(&ListParams::default().labels(SOLVER_LABEL)).await.map_err(|e| e.to_string())?.items.into_iter().next().ok_or_else(|| "no solver pod".to_string())
    })
    .await?;
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let args = container.args.clone().unwrap_or_default();
    for want in [format!("--domain={DOMAIN}"), format!("--token={token}"), format!("--key={key}")] {
        if !args.contains(&want) {
            return Err(format!("solver pod args {args:?} lack {want}").into());
        }
    }
    let port = args.iter().find_map(|a| a.strip_prefix("--listen-port=")).ok_or("no --listen-port")?.parse::<u16>()?;
    let svc: Api<Service> = Api::namespaced(c.clone(), ns);
    let svc_port = svc.get(&solver_service).await?.spec.unwrap().ports.unwrap()[0].port as u16;
    if backend["port"] != json!(svc_port) {
        return Err(format!("the route's backend port {} is not the Service's {svc_port}", backend["port"]).into());
    }
    let mut solver = Proc::spawn(
        {
            let mut c = Command::new(cm_bin.join("acmesolver"));
            c.args(&args);
            c
        },
        dir.path().join("acmesolver.log"),
    );
    wait_port(&format!("127.0.0.1:{port}"), &mut solver, "acmesolver")?;

    // Envoy Gateway on the deployer's rendered objects plus the solver's route as read.
    let render_dir = dir.path().join("render");
    let rendered = render::render(DOMAIN, &render_dir);
    let mut eg_objects = render::for_envoy_gateway(&rendered);
    eg_objects.push(as_written(&solver_route));
    // The router's backends are never reached here (HTTP only redirects): an address nothing
    // listens on.
    let objects = render::with_backends(&eg_objects, &|sp| {
        Some(if sp.service == solver_service { SocketAddr::from((Ipv4Addr::LOCALHOST, port)) } else { SocketAddr::from((Ipv4Addr::LOCALHOST, 9)) })
    });
    let (secrets, _ca) = render::tls_secrets(&objects, &render_dir);
    let mut objects = objects;
    objects.extend(secrets);
    let _files = gateway::files::serve_rendered(&rendered);
    let t_eg = Instant::now();
    let eg = EnvoyGateway::start(&objects, &[render::port("PORT_HTTP")])?;
    let key_route = format!("{ns}/{solver_name}");
    eg.wait_status("HTTPRoute", &key_route, "Accepted and ResolvedRefs", |s| {
        gateway::status::all_true(s, "Accepted") && gateway::status::all_true(s, "ResolvedRefs")
    });
    // Through Envoy: the challenge reaches the solver, the rest of HTTP is redirected.
    let r = http_get(&challenge_path)?;
    if r.status != 200 || r.body != key.as_bytes() {
        return Err(format!("GET {challenge_path} through Envoy: {} {:?}", r.status, String::from_utf8_lossy(&r.body)).into());
    }
    let r = http_get("/.well-known/acme-challenge/other")?;
    if r.status != 301 {
        return Err(format!("another challenge path through Envoy: {} (want the redirect's 301)", r.status).into());
    }
    eprintln!("cert-manager test: Envoy Gateway configured in {:.1} s", t_eg.elapsed().as_secs_f64());

    // cert-manager's self-check passes, Pebble validates through Envoy, the certificate is
    // issued into the Secret the Gateway's HTTPS listener names.
    let certs = &ar("cert-manager.io", "v1", "Certificate");
    let cert_name = &format!("{name}-tls");
    until("the Certificate becomes Ready", 120, &mut cm, move || async move {
        let ct = get(c, ns, certs, cert_name).await.ok_or("no Certificate")?;
        if ready(&ct) {
            return Ok(());
        }
        let ch = list(c, ns, challenges, None).await;
        Err(format!("Certificate {}; challenges {:?}", ct["status"], ch.iter().map(|c| &c["status"]).collect::<Vec<_>>()))
    })
    .await
    .map_err(|e| format!("{}\nacmesolver:\n{}\npebble:\n{}", e.message().unwrap_or_default(), solver.log_tail(), pebble.log_tail()))?;
    solver.alive("acmesolver")?;
    let solver_log = std::fs::read_to_string(&solver.log).unwrap_or_default();
    if !solver_log.contains("got successful challenge request") {
        return Err(format!("the acmesolver never answered a challenge:\n{}", solver.log_tail()).into());
    }
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let s = secrets.get(cert_name).await?;
    let data = s.data.unwrap_or_default();
    let crt = data.get("tls.crt").ok_or("no tls.crt")?.0.clone();
    if data.get("tls.key").is_none_or(|k| k.0.is_empty()) {
        return Err("no tls.key".into());
    }
    let pem = dir.path().join("issued.pem");
    std::fs::write(&pem, &crt).unwrap();
    let out = Command::new("openssl").args(["x509", "-noout", "-issuer", "-ext", "subjectAltName", "-in"]).arg(&pem).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains(&format!("DNS:{DOMAIN}")) || !text.to_lowercase().contains("pebble") {
        return Err(format!("the issued certificate is not Pebble's for {DOMAIN}:\n{text}").into());
    }
    eprintln!("cert-manager test: Certificate Ready after {:.1} s in all", t0.elapsed().as_secs_f64());
    drop(eg);
    Ok(())
}
