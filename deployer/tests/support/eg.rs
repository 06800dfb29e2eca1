//! The real Envoy Gateway controller (ENVOY_GATEWAY_VERSION in manifests/kubernetes/values.env,
//! built by `scripts/envoy-gateway.sh build`) with its Kubernetes provider, run as a process
//! against a test control plane, as the release manifest's pod would run it:
//!
//! - its configuration is the `envoy-gateway-config` ConfigMap of the bundle `up` installs
//!   (the file the pod mounts at /config);
//! - its certificates come from `envoy-gateway certgen`, the release manifest's Job, run with
//!   the test's kubeconfig: it creates the Secrets in `envoy-gateway-system` (Envoy's, the
//!   rate limiter's, the HMAC salt), and the controller's own is written where the pod mounts
//!   it, `/certs` (a path of the test's private root, `ns`);
//! - the Envoy Deployments and Services it creates get pods from KWOK (Running, Ready; no
//!   Envoy runs in them): statuses are the controller's, the data path is not exercised here
//!   (tests/gateway does that, in standalone mode).
//!
//! The bundle's stand-in controller Deployment (`support::bundle`) stays: it is what `up`
//! waits for; this process is what its pod would run.

use super::{scratch, Scratch};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const NAMESPACE: &str = "envoy-gateway-system";

pub struct EnvoyGateway {
    pub dir: Scratch,
    child: Mutex<Child>,
}

impl EnvoyGateway {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy-gateway.log")).unwrap_or_default()
    }
}

impl Drop for EnvoyGateway {
    fn drop(&mut self) {
        let mut c = self.child.lock().unwrap();
        drop(c.stdin.take());
        let _ = c.wait();
    }
}

fn bin_dir() -> PathBuf {
    let out = Command::new(super::repo_root().join("scripts/envoy-gateway.sh")).arg("bin").output().expect("envoy-gateway.sh runs");
    assert!(out.status.success(), "scripts/envoy-gateway.sh bin: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The EnvoyGateway configuration file of the bundle's `envoy-gateway-config` ConfigMap.
pub fn config_of_bundle(manifest: &Path) -> String {
    super::read_docs(manifest)
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "envoy-gateway-config")
        .and_then(|d| d["data"]["envoy-gateway.yaml"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no envoy-gateway-config ConfigMap in {}", manifest.display()))
}

/// Runs certgen, writes the controller's certificate to /certs and starts the controller;
/// returns once its readiness probe answers.
pub async fn start(kubeconfig: &Path, manifest: &Path) -> EnvoyGateway {
    let c = super::client(kubeconfig).await;
    let pp = PatchParams::apply("ipfs-edge-tests");
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.patch(NAMESPACE, &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})))
        .await
        .unwrap();
    let bin = bin_dir();
    // The Job's command, with its default flags; the topology injector's webhook
    // configuration is not part of what the process outside needs.
    let out = Command::new(bin.join("envoy-gateway"))
        .args(["certgen", "--disable-topology-injector"])
        .env("KUBECONFIG", kubeconfig)
        .env("ENVOY_GATEWAY_NAMESPACE", NAMESPACE)
        .output()
        .unwrap();
    assert!(out.status.success(), "certgen: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    write_certs(&c).await;
    let dir = scratch("envoy-gateway");
    let config = dir.path().join("envoy-gateway.yaml");
    std::fs::write(&config, config_of_bundle(manifest)).unwrap();
    let mut child = Command::new(super::repo_root().join("scripts/envoy-gateway.sh"))
        .arg("run")
        .arg(dir.path())
        .arg(&config)
        .env("KUBECONFIG", kubeconfig)
        .env("ENVOY_GATEWAY_NAMESPACE", NAMESPACE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("scripts/envoy-gateway.sh run");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("started"), "envoy-gateway did not start: {line:?}");
    let eg = EnvoyGateway { dir, child: Mutex::new(child) };
    let t0 = Instant::now();
    while !ready() {
        assert!(t0.elapsed() < Duration::from_secs(120), "Envoy Gateway never became ready:\n{}", eg.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("envoy-gateway (Kubernetes provider) ready in {:.1} s", t0.elapsed().as_secs_f64());
    // Ready is not yet reconciling: the controllers start once this instance holds the
    // leader election Lease (controller-runtime). Waited for, bounded: a configuration
    // without leader election has no Lease, and then the tests go on.
    let leases: Api<Lease> = Api::namespaced(c.clone(), NAMESPACE);
    let t1 = Instant::now();
    loop {
        let held = leases.list(&Default::default()).await.map(|l| {
            l.items.iter().any(|x| x.spec.as_ref().and_then(|s| s.holder_identity.as_deref()).is_some_and(|h| !h.is_empty()))
        });
        if held.unwrap_or(false) {
            eprintln!("envoy-gateway leads after {:.1} s more", t1.elapsed().as_secs_f64());
            break;
        }
        if t1.elapsed() > Duration::from_secs(60) {
            eprintln!("envoy-gateway holds no Lease after 60 s; going on:\n{}", tail(&eg.log(), 20));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eg
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The `envoy-gateway` Secret certgen made, where the pod mounts it.
async fn write_certs(c: &Client) {
    let secrets: Api<Secret> = Api::namespaced(c.clone(), NAMESPACE);
    let s = secrets.get("envoy-gateway").await.expect("certgen's envoy-gateway Secret");
    for (k, v) in s.data.unwrap_or_default() {
        std::fs::write(Path::new("/certs").join(&k), v.0).unwrap_or_else(|e| panic!("/certs/{k}: {e} (not in the test's private root?)"));
    }
}

/// controller-runtime's readiness probe (`:8081/readyz`, the pod's readinessProbe).
fn ready() -> bool {
    let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:8081") else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200")
}

/// The in-cluster filter server played on this run's loopback: `GET /<file>` answers the
/// file of `dir`, as busybox httpd does in the filter server's pod (KWOK's pods run
/// nothing). Envoy Gateway fetches the filters from there (the EnvoyExtensionPolicy's
/// `http` URLs, `<name>-filters.<namespace>.svc.cluster.local`, resolved by `ns::add_host`).
pub fn serve_files(addr: std::net::SocketAddr, dir: PathBuf) {
    let l = std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                let mut s = s;
                match std::fs::read(dir.join(&path)).ok().filter(|_| !path.contains('/') && !path.is_empty()) {
                    Some(body) => {
                        let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        let _ = s.write_all(&body);
                    }
                    None => {
                        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                }
            });
        }
    });
}
