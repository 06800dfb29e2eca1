//! The deployer's own output (`deployer render --out DIR`), and what the tests derive from it
//! for standalone mode. Nothing here is a copy of a rendered object: every object Envoy
//! Gateway reads comes from the render, changed only where a cluster has something a
//! standalone Envoy Gateway cannot have:
//!
//! - `Backend` objects for the Services the routes name (standalone mode has no Services
//!   with endpoints): one per (Service, port) a route uses, named `<service>-<port>`, each
//!   backendRef pointed at it;
//! - the TLS Secret cert-manager would issue (a self-signed certificate for the domain);
//! - every object of a kind Envoy Gateway does not read (workloads, cert-manager's) left out.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const EG_GROUP: &str = "gateway.envoyproxy.io";
pub const GW_GROUP: &str = "gateway.networking.k8s.io";

/// manifests/kubernetes/values.env, the one place for names, ports and versions.
pub fn values() -> BTreeMap<String, String> {
    e2e::values::all()
}

pub fn value(key: &str) -> String {
    e2e::values::get(key)
}

pub fn port(key: &str) -> u16 {
    value(key).parse().unwrap_or_else(|_| panic!("{key} is a port"))
}

/// The deployer binary: `DEPLOYER_BIN`, else built now (`cargo build -p deployer`).
fn deployer() -> PathBuf {
    if let Some(b) = std::env::var_os("DEPLOYER_BIN") {
        return b.into();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "-p", "deployer"])
        .current_dir(e2e::repo_root())
        .status()
        .expect("cargo build -p deployer");
    assert!(st.success(), "cargo build -p deployer failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| e2e::repo_root().join("target"));
    target.join("debug/deployer")
}

/// Every object of `deployer render --domain DOMAIN --out DIR`, in the deployer's order.
pub fn render(domain: &str, dir: &Path) -> Vec<Value> {
    render_with(domain, dir, &[])
}

/// The same with more of `deployer render`'s options.
pub fn render_with(domain: &str, dir: &Path, args: &[&std::ffi::OsStr]) -> Vec<Value> {
    let out = Command::new(deployer())
        .args(["render", "--domain", domain, "--out"])
        .arg(dir)
        .args(args)
        .arg("--filters-dir")
        .arg(e2e::wasm_dir())
        .current_dir(e2e::repo_root())
        .output()
        .expect("run deployer render");
    assert!(out.status.success(), "deployer render failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_yaml_ng::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

pub fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("")
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn group(o: &Value) -> &str {
    let api = o["apiVersion"].as_str().unwrap_or("");
    api.rsplit_once('/').map_or("", |(g, _)| g)
}

/// What Envoy Gateway reads of the render: the Gateway API and Envoy Gateway objects, and
/// the Namespace.
pub fn for_envoy_gateway(objects: &[Value]) -> Vec<Value> {
    objects.iter().filter(|o| matches!(group(o), GW_GROUP | EG_GROUP) || kind(o) == "Namespace").cloned().collect()
}

/// One (Service, port) a route sends to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServicePort {
    pub namespace: String,
    pub service: String,
    pub port: u16,
}

impl ServicePort {
    pub fn backend_name(&self) -> String {
        format!("{}-{}", self.service, self.port)
    }
}

/// Every Service backendRef of the HTTPRoutes.
pub fn service_ports(objects: &[Value]) -> Vec<ServicePort> {
    let mut out = Vec::new();
    for r in objects.iter().filter(|o| kind(o) == "HTTPRoute") {
        let ns = r["metadata"]["namespace"].as_str().unwrap_or("default");
        for rule in r["spec"]["rules"].as_array().into_iter().flatten() {
            for b in rule["backendRefs"].as_array().into_iter().flatten() {
                if b["kind"].as_str().unwrap_or("Service") == "Service" && b["group"].as_str().unwrap_or("").is_empty() {
                    let sp = ServicePort {
                        namespace: b["namespace"].as_str().unwrap_or(ns).to_string(),
                        service: b["name"].as_str().expect("backendRef name").to_string(),
                        port: b["port"].as_u64().expect("Service backendRef port") as u16,
                    };
                    if !out.contains(&sp) {
                        out.push(sp);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The objects with each Service backendRef replaced by a `Backend` at the address
/// `resolve` gives for it (panics on one it has none for: a route nobody serves is a test
/// bug). The Backends are appended.
pub fn with_backends(objects: &[Value], resolve: &dyn Fn(&ServicePort) -> Option<SocketAddr>) -> Vec<Value> {
    let ports = service_ports(objects);
    let mut out: Vec<Value> = objects.to_vec();
    for r in out.iter_mut().filter(|o| kind(o) == "HTTPRoute") {
        let ns = r["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        for rule in r["spec"]["rules"].as_array_mut().into_iter().flatten() {
            for b in rule["backendRefs"].as_array_mut().into_iter().flatten() {
                if b["kind"].as_str().unwrap_or("Service") != "Service" || !b["group"].as_str().unwrap_or("").is_empty() {
                    continue;
                }
                let sp = ServicePort {
                    namespace: b["namespace"].as_str().unwrap_or(&ns).to_string(),
                    service: b["name"].as_str().unwrap().to_string(),
                    port: b["port"].as_u64().unwrap() as u16,
                };
                let m = b.as_object_mut().unwrap();
                m.insert("group".into(), json!(EG_GROUP));
                m.insert("kind".into(), json!("Backend"));
                m.insert("name".into(), json!(sp.backend_name()));
                // A Backend's endpoints carry the port.
                m.remove("port");
            }
        }
    }
    for sp in &ports {
        let addr = resolve(sp).unwrap_or_else(|| panic!("no local server for {sp:?}"));
        out.push(json!({
            "apiVersion": format!("{EG_GROUP}/v1alpha1"),
            "kind": "Backend",
            "metadata": {"name": sp.backend_name(), "namespace": sp.namespace},
            "spec": {"endpoints": [{"ip": {"address": addr.ip().to_string(), "port": addr.port()}}]},
        }));
    }
    out
}

/// The Secrets the Gateway's HTTPS listeners name (cert-manager's, on a cluster), each with
/// a fresh certificate for the listener's hostname from a fresh test CA. Returns the objects
/// and the CA certificates (PEM) a client must trust.
pub fn tls_secrets(objects: &[Value], dir: &Path) -> (Vec<Value>, Vec<u8>) {
    let mut secrets = Vec::new();
    let mut ca = Vec::new();
    for g in objects.iter().filter(|o| kind(o) == "Gateway") {
        let ns = g["metadata"]["namespace"].as_str().unwrap_or("default");
        for l in g["spec"]["listeners"].as_array().into_iter().flatten() {
            let host = l["hostname"].as_str().unwrap_or("localhost");
            for c in l["tls"]["certificateRefs"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap();
                let (cert, key) = self_signed(host, dir);
                ca.extend_from_slice(&std::fs::read(dir.join(format!("{host}.ca.crt"))).unwrap());
                secrets.push(json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/tls",
                    "metadata": {"name": name, "namespace": c["namespace"].as_str().unwrap_or(ns)},
                    "data": {"tls.crt": b64(&cert), "tls.key": b64(&key)},
                }));
            }
        }
    }
    (secrets, ca)
}

/// A test CA and a server certificate for `host` signed by it (a client verifying the chain
/// refuses a self-signed certificate that is also a CA as the server's own). Returns (the
/// server certificate followed by the CA, as the Secret's tls.crt; the key).
fn self_signed(host: &str, dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let f = |n: &str| dir.join(format!("{host}.{n}"));
    let openssl = |args: &[&str]| {
        let st = Command::new("openssl").args(args).stderr(std::process::Stdio::null()).status().expect("openssl");
        assert!(st.success(), "openssl {args:?} failed");
    };
    let p = |n: &str| f(n).display().to_string();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=ipfs-edge test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"];
    ca.extend(ec);
    let (ca_key, ca_crt) = (p("ca.key"), p("ca.crt"));
    ca.extend(["-keyout", &ca_key, "-out", &ca_crt]);
    openssl(&ca);
    let subj = format!("/CN={host}");
    let (key, csr, crt, ext) = (p("key"), p("csr"), p("crt"), p("ext"));
    let mut req = vec!["req", "-subj", subj.as_str()];
    req.extend(ec);
    req.extend(["-keyout", &key, "-out", &csr]);
    openssl(&req);
    std::fs::write(&ext, format!("subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")).unwrap();
    openssl(&["x509", "-req", "-days", "2", "-in", &csr, "-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial", "-extfile", &ext, "-out", &crt]);
    let mut chain = std::fs::read(&crt).unwrap();
    let ca_pem = std::fs::read(&ca_crt).unwrap();
    chain.extend_from_slice(&ca_pem);
    (chain, std::fs::read(&key).unwrap())
}

pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The wasm code sources of the EnvoyExtensionPolicies: (filter name, URL, sha256).
pub fn wasm_sources(objects: &[Value]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in objects.iter().filter(|o| kind(o) == "EnvoyExtensionPolicy") {
        for w in p["spec"]["wasm"].as_array().into_iter().flatten() {
            out.push((
                w["name"].as_str().unwrap_or("").to_string(),
                w["code"]["http"]["url"].as_str().unwrap_or("").to_string(),
                w["code"]["http"]["sha256"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// The same for the policies attached to the Gateway listener `section`: targeting it (by
/// `sectionName`) or an HTTPRoute attached to it.
pub fn wasm_sources_on(objects: &[Value], section: &str) -> Vec<(String, String, String)> {
    wasm_sources(&policies_on(objects, section))
}

/// The EnvoyExtensionPolicies attached to listener `section`: to it by `sectionName`, or to
/// a route whose parentRefs name it.
pub fn policies_on(objects: &[Value], section: &str) -> Vec<Value> {
    let on_section = |refs: &Value| refs.as_array().into_iter().flatten().any(|t| t["sectionName"] == section);
    let routes: Vec<&str> =
        objects.iter().filter(|o| kind(o) == "HTTPRoute" && on_section(&o["spec"]["parentRefs"])).map(name).collect();
    objects
        .iter()
        .filter(|o| kind(o) == "EnvoyExtensionPolicy")
        .filter(|p| {
            p["spec"]["targetRefs"].as_array().into_iter().flatten().any(|t| {
                (t["kind"] == "Gateway" && t["sectionName"] == section)
                    || (t["kind"] == "HTTPRoute" && t["name"].as_str().is_some_and(|n| routes.contains(&n)))
            })
        })
        .cloned()
        .collect()
}

/// The name of the probes route the deployer renders where health's answers are fixed
/// (manifests/kubernetes/envoy-gateway/native-health.yaml).
pub fn probes_route() -> String {
    format!("{}-probes", value("NAME"))
}

/// Writes the objects as one YAML stream (what the File provider watches).
pub fn write_stream(objects: &[Value], path: &Path) {
    let mut text = String::new();
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_yaml_ng::to_string(o).unwrap());
    }
    std::fs::write(path, text).unwrap();
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::b64(b""), "");
        assert_eq!(super::b64(b"f"), "Zg==");
        assert_eq!(super::b64(b"fo"), "Zm8=");
        assert_eq!(super::b64(b"foo"), "Zm9v");
        assert_eq!(super::b64(b"foobar"), "Zm9vYmFy");
    }
}
