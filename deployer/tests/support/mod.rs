//! A real kube-apiserver 1.20 + kube-controller-manager + etcd for the integration tests and
//! the apply benchmark (shared with benches/apply.rs), a local bundle built from the real
//! CRDs, and a stand-in for the kubelet.
//!
//! How the 1.20 server's gaps are handled (also in deployer/README.md, "Tests"):
//! - CRDs: the bundle is built from the CRDs of Envoy Gateway v1.9.0 (with Gateway API
//!   v1.6.1) and cert-manager v1.21.1 in ../shared/crds, downgraded for 1.20 here, in the
//!   test only: CEL rules (`x-kubernetes-validations`) and `selectableFields` are removed
//!   (1.20 does not know them), and `default: ""` is removed (1.20 wrongly refuses an empty
//!   string default as "must be of type string"; a list-map key that loses its default
//!   becomes required, as 1.20 demands). The deployer applies real release manifests unchanged.
//! - Controllers: the release manifests' Deployments cannot run here (no kubelet, no images);
//!   the bundle carries one stand-in controller Deployment per component with the upstream
//!   labels, so "present", the `--enable-gateway-api` flag and the waits are exercised.
//! - policy/v1: the deployer applies the PodDisruptionBudget as policy/v1beta1 on 1.20 (same
//!   fields); the tests check it is there as v1beta1.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script() -> PathBuf {
    repo_root().join("scripts/kube-apiserver.sh")
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
    /// Stops the server now (the benchmark; tests leave it to the end of the process).
    pub fn stop(&self) {
        let mut c = self.child.lock().unwrap();
        drop(c.stdin.take());
        let _ = c.wait();
    }
}

/// The server shared by this process's tests, with the stand-in kubelet.
pub fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| start(true))
}

/// Starts a server. Fails (never skips) when the binaries are not built.
pub fn start(kubelet: bool) -> Server {
    {
        let bin = Command::new(script()).arg("bin").output().expect("scripts/kube-apiserver.sh runs");
        let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
        assert!(
            bin.join("kube-apiserver").is_file() && bin.join("kube-controller-manager").is_file() && which("etcd"),
            "kube-apiserver 1.20 is not built (looked in {}): run `scripts/kube-apiserver.sh build` first \
             (once, about 5 minutes; cached outside the checkout)",
            bin.display()
        );
        let dir = scratch("kube");
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
        if kubelet {
            start_kubelet(dir.path().join("admin.kubeconfig"));
        }
        Server { dir, url, child: Mutex::new(child) }
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

fn which(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().is_ok_and(|o| o.status.success())
}

pub async fn client(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
    Client::try_from(cfg).unwrap()
}

/// Namespaces whose pods the stand-in kubelet leaves alone (an `up` then waits forever).
pub fn paused() -> &'static Mutex<HashSet<String>> {
    static P: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

/// Stands in for the kubelet: marks every pod Running and Ready (through pods/status), as
/// the real one would once its containers pass their readiness probes.
fn start_kubelet(kubeconfig: PathBuf) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let c = client(&kubeconfig).await;
            let pods: Api<Pod> = Api::all(c.clone());
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for p in list {
                        let ns = p.metadata.namespace.clone().unwrap_or_default();
                        let ready = p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                        if ready || paused().lock().unwrap().contains(&ns) || p.metadata.deletion_timestamp.is_some() {
                            continue;
                        }
                        let now = k8s_openapi::jiff::Timestamp::now().to_string();
                        let status = json!({"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": now},
                            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        ]}});
                        let api: Api<Pod> = Api::namespaced(c.clone(), &ns);
                        let name = p.metadata.name.unwrap_or_default();
                        let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    });
}

pub fn crd_dir() -> PathBuf {
    std::env::var("IPFS_EDGE_CRDS").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("../shared/crds"))
}

fn read_docs(path: &Path) -> Vec<Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|de| Value::deserialize(de).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
}

/// See the module comment: what 1.20 cannot store, removed.
pub fn downgrade_for_1_20(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("x-kubernetes-validations");
            m.remove("selectableFields");
            if m.get("default") == Some(&Value::String(String::new())) {
                m.remove("default");
            }
            // A list-map key must have a default or be required on 1.20.
            if let (Some(Value::Array(keys)), Some(items)) = (m.get("x-kubernetes-list-map-keys").cloned(), m.get_mut("items")) {
                for k in keys.iter().filter_map(Value::as_str) {
                    if items["properties"][k].get("default") == Some(&Value::String(String::new())) {
                        let req = items.as_object_mut().unwrap().entry("required").or_insert_with(|| json!([]));
                        if !req.as_array().unwrap().iter().any(|r| r == k) {
                            req.as_array_mut().unwrap().push(k.into());
                        }
                    }
                }
            }
            m.values_mut().for_each(downgrade_for_1_20);
        }
        Value::Array(a) => a.iter_mut().for_each(downgrade_for_1_20),
        _ => {}
    }
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
        docs.iter_mut().for_each(downgrade_for_1_20);
        docs.extend(extra);
        let text: String = docs.iter().map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap())).collect();
        std::fs::write(dir.path().join(file), text).unwrap();
    };
    write(
        "envoy-gateway-v1.9.0.yaml",
        "envoy-gateway-v1.9.0",
        stand_in_controller("envoy-gateway-system", "envoy-gateway", json!({"control-plane": "envoy-gateway"}), json!(["server"])),
    );
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
