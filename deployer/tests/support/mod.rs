//! A real control plane for the integration tests and the apply benchmark (shared with
//! benches/apply.rs): etcd, kube-apiserver, kube-controller-manager and kube-scheduler of the
//! release in scripts/env.sh, and KWOK as the kubelet of one node, so pods the controllers
//! create are scheduled and become Running and Ready as a kubelet reports them. Also a local
//! bundle built from the real CRDs.
//!
//! - CRDs: the bundle carries the CRDs of Envoy Gateway v1.9.0 (with Gateway API v1.6.1) and
//!   cert-manager v1.21.1 from ../shared/crds unchanged, CEL rules included: the server
//!   enforces them on everything the deployer applies.
//! - Controllers: the release manifests' Deployments do not run here (no container runtime);
//!   the bundle carries one stand-in controller Deployment per component with the upstream
//!   labels, so "present", the `--enable-gateway-api` flag and the waits are exercised (KWOK
//!   makes their pods Ready too).
//! - Volumes: KWOK's volume stages stand in for a provisioner: the default StorageClass
//!   `kwok-volume` gets a PersistentVolume per claim, bound, released and deleted as a CSI
//!   provisioner would (nothing is stored in them).
#![allow(dead_code)]

pub mod eg;
pub mod ns;

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script() -> PathBuf {
    repo_root().join("scripts/kube-apiserver.sh")
}

/// A version from scripts/env.sh, the one place for them.
pub fn tool_version(name: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". \"$0\" && echo \"${name}\""))
        .arg(repo_root().join("scripts/env.sh"))
        .output()
        .expect("bash runs");
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!v.is_empty(), "{name} is not set in scripts/env.sh");
    v
}

/// The running server, owned by this process: `scripts/kube-apiserver.sh run` stops it when
/// our end of its stdin closes, which the kernel does however this process ends.
pub struct Server {
    pub dir: Scratch,
    pub url: String,
    child: Mutex<Child>,
}

impl Server {
    pub fn admin(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }
    pub fn nobody(&self) -> PathBuf {
        self.dir.path().join("nobody.kubeconfig")
    }
    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }
    /// Stops the API server and starts it again after `down` with no server (same port, same
    /// etcd; the other components keep running and reconnect).
    pub fn restart_apiserver(&self, down: Duration) {
        let out = Command::new(script())
            .arg("restart-apiserver")
            .arg(self.dir.path())
            .arg(down.as_secs().to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "restart-apiserver: {}", String::from_utf8_lossy(&out.stderr));
    }
    /// Stops the server now (the benchmark; tests leave it to the end of the process).
    pub fn stop(&self) {
        let mut c = self.child.lock().unwrap();
        drop(c.stdin.take());
        let _ = c.wait();
    }
}

/// The server shared by this process's tests, with the bundle's CRDs already served.
///
/// Why the CRDs first: the tests run `up` in parallel, and the first ones would all install
/// the components at once; the deployer's discovery then fails on an API group another run
/// has just created, listed but not yet served ("404 page not found"). A test that starts
/// its own server (`start`) still covers the install into an empty cluster.
pub fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let s = start();
        let kubeconfig = s.admin();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(install_crds(&kubeconfig));
        })
        .join()
        .expect("installing the bundle's CRDs");
        s
    })
}

/// Applies every CRD of the bundle and waits until each group version is served.
async fn install_crds(kubeconfig: &Path) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let c = client(kubeconfig).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let mut served = Vec::new();
    for sub in ["envoy-gateway-v1.9.0", "cert-manager-v1.21.1"] {
        let mut files: Vec<_> = std::fs::read_dir(crd_dir().join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for doc in files.iter().filter(|f| f.extension().is_some_and(|x| x == "yaml")).flat_map(|f| read_docs(f)) {
            if doc["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            crds.patch(&name, &PatchParams::apply("ipfs-edge-tests").force(), &Patch::Apply(&doc))
                .await
                .unwrap_or_else(|e| panic!("CRD {name}: {e}"));
            for v in doc["spec"]["versions"].as_array().unwrap().iter().filter(|v| v["served"] == true) {
                served.push(format!("/apis/{}/{}", doc["spec"]["group"].as_str().unwrap(), v["name"].as_str().unwrap()));
            }
        }
    }
    served.sort();
    served.dedup();
    for path in served {
        let start = std::time::Instant::now();
        loop {
            let req = http::Request::get(&path).body(Vec::new()).unwrap();
            if c.request_text(req).await.is_ok() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{path} never served");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts a server. Fails (never skips) when the binaries are not built.
pub fn start() -> Server {
    let bin = Command::new(script()).arg("bin").output().expect("scripts/kube-apiserver.sh runs");
    let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
    let missing: Vec<_> = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        .into_iter()
        .filter(|b| !bin.join(b).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not built (looked in {}): run `scripts/kube-apiserver.sh build` first \
         (once, from the Go module proxy; cached outside the checkout)",
        bin.display()
    );
    // One directory per server: a test may start its own next to the shared one.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = scratch(&format!("kube{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let mut child = Command::new(script())
        .arg("run")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start scripts/kube-apiserver.sh run");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.strip_prefix("ready ").unwrap_or_else(|| panic!("kube-apiserver did not start: {line:?}")).trim().to_string();
    Server { dir, url, child: Mutex::new(child) }
}

/// A server owned by a test (not the shared one, which lives to the end of the process) is
/// stopped before its directory is removed.
impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory under cargo's CARGO_TARGET_TMPDIR named after this process. The shared
/// fixtures live in statics, which are never dropped, so each run removes the directories
/// of processes that are gone instead.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch(what: &str) -> Scratch {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deployer");
    std::fs::create_dir_all(&base).unwrap();
    for e in std::fs::read_dir(&base).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = base.join(format!("{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

pub async fn client(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
    Client::try_from(cfg).unwrap()
}

/// Keeps the namespace from getting any pod, as a cluster out of quota would: the namespace
/// with a ResourceQuota of zero pods (the StatefulSet controller's creates are refused, so
/// `up` waits in step 3).
pub async fn pause(c: &Client, ns: &str) {
    let pp = PatchParams::apply("ipfs-edge-tests");
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.patch(ns, &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})))
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(c.clone(), ns);
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}});
    quotas.patch("no-pods", &pp, &Patch::Apply(quota)).await.unwrap();
    // The quota admission refuses pods once the quota controller has counted the namespace.
    for _ in 0..100 {
        if quotas.get("no-pods").await.unwrap().status.and_then(|s| s.hard).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ResourceQuota in {ns} was never counted");
}

/// Undoes [`pause`].
pub async fn resume(c: &Client, ns: &str) {
    let quotas: Api<ResourceQuota> = Api::namespaced(c.clone(), ns);
    quotas.delete("no-pods", &DeleteParams::default()).await.unwrap();
}

pub fn crd_dir() -> PathBuf {
    std::env::var("IPFS_EDGE_CRDS").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("../shared/crds"))
}

pub fn read_docs(path: &Path) -> Vec<Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|de| Value::deserialize(de).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
}

fn stand_in_controller(ns: &str, name: &str, labels: Value, args: Value) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels.clone()},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels.clone()},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                    {"name": name, "image": "registry.invalid/stand-in:0", "args": args}]}}}}),
    ]
}

/// What Envoy Gateway's release manifest holds besides its CRDs, RBAC and Deployment, and a
/// controller outside the cluster needs: its configuration (the ConfigMap the pod mounts at
/// /config; the chart's default `config.envoyGateway`, charts/gateway-helm/values.tmpl.yaml,
/// merged into `eg.default-envoy-gateway-config` as the chart renders it, image settings
/// left out: no image runs here) and the Service the Envoy proxies reach it by (xDS, the
/// rate limiter, the Wasm cache, metrics).
fn envoy_gateway_release_objects() -> Vec<Value> {
    let config = "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyGateway\ngateway:\n  controllerName: gateway.envoyproxy.io/gatewayclass-controller\n\
                  logging:\n  level:\n    default: info\nprovider:\n  type: Kubernetes\nextensionApis: {}\n";
    let labels = json!({"app.kubernetes.io/name": "gateway-helm", "app.kubernetes.io/instance": "eg"});
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "envoy-gateway-config", "namespace": "envoy-gateway-system", "labels": labels},
            "data": {"envoy-gateway.yaml": config}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "envoy-gateway", "namespace": "envoy-gateway-system", "labels": {"control-plane": "envoy-gateway"}},
            "spec": {"type": "ClusterIP", "selector": {"control-plane": "envoy-gateway"}, "ports": [
                {"name": "grpc", "port": 18000, "targetPort": 18000}, {"name": "ratelimit", "port": 18001, "targetPort": 18001},
                {"name": "wasm", "port": 18002, "targetPort": 18002}, {"name": "metrics", "port": 19001, "targetPort": 19001}]}}),
    ]
}

/// A bundle directory in the layout `up --bundle` reads, built from the real CRDs.
pub fn bundle() -> Scratch {
    let crds = crd_dir();
    assert!(crds.is_dir(), "CRD directory {} is missing (set IPFS_EDGE_CRDS)", crds.display());
    let dir = scratch("bundle");
    let write = |file: &str, sub: &str, extra: Vec<Value>| {
        let mut docs = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(crds.join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.extension().is_some_and(|x| x == "yaml")) {
            docs.extend(read_docs(f));
        }
        assert!(docs.len() > 5, "too few CRDs under {}", crds.join(sub).display());
        docs.extend(extra);
        let text: String = docs.iter().map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap())).collect();
        std::fs::write(dir.path().join(file), text).unwrap();
    };
    let mut eg = stand_in_controller(
        "envoy-gateway-system",
        "envoy-gateway",
        json!({"control-plane": "envoy-gateway"}),
        json!(["server", "--config-path=/config/envoy-gateway.yaml"]),
    );
    eg.extend(envoy_gateway_release_objects());
    write("envoy-gateway-v1.9.0.yaml", "envoy-gateway-v1.9.0", eg);
    write(
        "cert-manager-v1.21.1.yaml",
        "cert-manager-v1.21.1",
        stand_in_controller(
            "cert-manager",
            "cert-manager",
            json!({"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}),
            json!(["--v=2"]),
        ),
    );
    dir
}

/// Stand-in .wasm files (only delivered as ConfigMap bytes here; nothing runs them).
pub fn filters() -> Scratch {
    let dir = scratch("filters");
    for f in ["health", "router", "add_response"] {
        std::fs::write(dir.path().join(format!("{f}.wasm")), format!("\0asm\x01\0\0\0{f}")).unwrap();
    }
    dir
}
