//! `deployer` (the built binary) against a real control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler; versions in scripts/env.sh) with KWOK as the
//! kubelet. Needs `scripts/kube-apiserver.sh build` once; without it every test here fails
//! with that command. What stands in for what cannot run here: tests/support/mod.rs and
//! deployer/README.md ("Tests").

mod support;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::{verbs, ApiResource, Discovery, Scope};
use kube::Client;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Env {
    bundle: support::Scratch,
    filters: support::Scratch,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| Env { bundle: support::bundle(), filters: support::filters() })
}

fn deployer(kubeconfig: &Path, ns: &str, args: &[&str]) -> Command {
    let e = env();
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployer"));
    c.arg("--kubeconfig").arg(kubeconfig).args(["--namespace", ns, "--domain", "ipfs.example.test"]);
    c.arg("--filters-dir").arg(e.filters.path());
    c.args(args);
    if args.first() == Some(&"up") {
        c.arg("--bundle").arg(e.bundle.path());
    }
    if !matches!(args.first(), Some(&"status") | Some(&"token")) {
        // A test may give its own `--timeout`.
        if !args.contains(&"--timeout") {
            c.args(["--timeout", "90"]);
        }
        // No cloud controller here: swarm Services get no address unless a test gives them one;
        // no Envoy Gateway or cert-manager controller either: nothing judges the edge.
        c.args(["--address-timeout", "1", "--controller-timeout", "1"]);
    }
    c
}

fn run(kubeconfig: &Path, ns: &str, args: &[&str]) -> Output {
    let out = deployer(kubeconfig, ns, args).output().expect("deployer runs");
    eprintln!("$ deployer {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    out
}

fn run_ok(kubeconfig: &Path, ns: &str, args: &[&str]) -> String {
    let out = run(kubeconfig, ns, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "deployer {} failed ({:?}):\n{err}", args.join(" "), out.status);
    err
}

/// Every object of the namespace (all listable kinds but events) and the cluster-scoped
/// objects `up` applies, with their resourceVersions.
async fn snapshot(c: &Client, ns: &str) -> BTreeMap<String, String> {
    snapshot_by(c, ns, |o| o.metadata.resource_version.clone().unwrap_or_default()).await
}

/// The same objects, each with what the deployer wrote of it: its uid and the deployer's
/// managedFields entries (time and fields). Controllers' own writes do not move it.
async fn deployer_writes(c: &Client, ns: &str) -> BTreeMap<String, String> {
    snapshot_by(c, ns, |o| {
        let mine: Vec<String> = o
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| m.manager.as_deref() == Some(deployer_manager()))
            .map(|m| format!("{:?} {:?} {}", m.operation, m.time, serde_json::to_string(&m.fields_v1).unwrap_or_default()))
            .collect();
        format!("{} {mine:?}", o.metadata.uid.clone().unwrap_or_default())
    })
    .await
}

/// The field manager of the deployer's server-side applies (deployer/src/k8s/apply.rs).
fn deployer_manager() -> &'static str {
    "ipfs-edge-deployer"
}

async fn snapshot_by(c: &Client, ns: &str, value: impl Fn(&DynamicObject) -> String) -> BTreeMap<String, String> {
    let disc = Discovery::new(c.clone()).run().await.unwrap();
    let mut out = BTreeMap::new();
    for group in disc.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) || ar.kind == "Event" {
                continue;
            }
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => Api::namespaced_with(c.clone(), ns, &ar),
                Scope::Cluster if ["Namespace", "GatewayClass", "CustomResourceDefinition"].contains(&ar.kind.as_str()) => {
                    Api::all_with(c.clone(), &ar)
                }
                Scope::Cluster => continue,
            };
            for o in api.list(&ListParams::default()).await.unwrap() {
                // Other tests' namespaces come and go.
                if ar.kind == "Namespace" && o.metadata.name.as_deref() != Some(ns) {
                    continue;
                }
                let key = format!("{}/{}/{}", ar.kind, o.metadata.namespace.clone().unwrap_or_default(), o.metadata.name.clone().unwrap_or_default());
                out.insert(key, value(&o));
            }
        }
    }
    out
}

/// Once the namespace has settled, a rerun of `up` reports "0 changed" for steps 2-6 and
/// leaves every resourceVersion where it was: the run before it converged.
async fn rerun_changes_nothing(kubeconfig: &Path, c: &Client, ns: &str) {
    let before = settled(c, ns).await;
    let written = deployer_writes(c, ns).await;
    // The manager's name is the deployer's (else this check would see nothing).
    assert!(written.values().any(|w| w.contains("Apply")), "no object applied by {}", deployer_manager());
    let err = run_ok(kubeconfig, ns, &["up"]);
    assert_eq!(err.matches("(0 changed)").count(), 5, "not converged:\n{err}");
    let after = snapshot(c, ns).await;
    // No object made or removed, and none written by the deployer.
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    assert_eq!(deployer_writes(c, ns).await, written, "the rerun wrote");
    // Every version that moved was moved by a controller on what it owns, never on an object
    // the deployer applies: after an API server restart the PersistentVolumeClaims' binder
    // resyncs them late, and so does the disruption controller the PodDisruptionBudget's
    // status (seen once on 2 cores). What the deployer wrote is held by `deployer_writes`
    // above, for those two as for every other object.
    let moved: Vec<&String> = after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k).collect();
    assert!(
        moved.iter().all(|k| k.starts_with("PersistentVolumeClaim/") || k.starts_with("PodDisruptionBudget/")),
        "moved during the rerun: {moved:?}"
    );
}

/// Waits until two snapshots a second apart agree (the controller-manager has settled).
async fn settled(c: &Client, ns: &str) -> BTreeMap<String, String> {
    let mut last = snapshot(c, ns).await;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = snapshot(c, ns).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("namespace {ns} never settled");
}

fn swarm_services(list: &[Service]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().filter_map(|s| s.metadata.name.clone()).filter(|n| n.contains("-swarm-")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn up_installs_everything_and_a_second_up_changes_nothing() {
    let s = support::server();
    let ns = "t-twice";
    // The router's configuration from a file; the second `up` goes without the flag.
    let router = support::scratch("router");
    let router_file = router.path().join("router.json");
    std::fs::write(&router_file, r#"{"credentials": {"bearer_tokens": ["ci-4b1d0c0ffee5eed5a1t"]}}"#).unwrap();
    let err = run_ok(&s.admin(), ns, &["up", "--replicas", "2", "--router-config", router_file.to_str().unwrap()]);
    for step in ["[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]"] {
        assert!(err.contains(step), "no {step} in:\n{err}");
    }
    let c = support::client(&s.admin()).await;

    // Step 1 from the bundle: cert-manager's controller runs with Gateway API support.
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(c.clone(), "cert-manager");
    let cm = deps.get("cert-manager").await.unwrap();
    let args = cm.spec.unwrap().template.spec.unwrap().containers[0].args.clone().unwrap();
    assert!(args.contains(&"--enable-gateway-api".to_string()), "{args:?}");

    // Every kind landed.
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    assert_eq!(
        swarm_services(&svcs.list(&Default::default()).await.unwrap().items),
        ["ipfs-cluster-swarm-0", "ipfs-cluster-swarm-0-udp", "ipfs-cluster-swarm-1", "ipfs-cluster-swarm-1-udp"]
    );
    // One protocol per Service (GKE refuses mixed ones in a LoadBalancer Service).
    for (name, want) in [("ipfs-cluster-swarm-0", "TCP"), ("ipfs-cluster-swarm-0-udp", "UDP")] {
        let swarm = svcs.get(name).await.unwrap().spec.unwrap();
        let protocols: Vec<_> = swarm.ports.unwrap().iter().map(|p| p.protocol.clone().unwrap()).collect();
        assert_eq!(protocols, [want]);
    }
    // No address arrived in time (no cloud controller): `up` says what to run when they do.
    assert!(err.contains("2 of 2 pods have no public swarm address yet") && err.contains("run `deployer up` again"), "{err}");
    for (g, v, k, name) in [
        ("policy", "v1", "PodDisruptionBudget", "ipfs-cluster"),
        ("gateway.networking.k8s.io", "v1", "Gateway", "ipfs-cluster"),
        ("cert-manager.io", "v1", "Certificate", "ipfs-cluster-tls"),
        ("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy", "ipfs-cluster-filters"),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, &ApiResource::from_gvk(&GroupVersionKind::gvk(g, v, k)));
        api.get(name).await.unwrap_or_else(|e| panic!("{k}/{name}: {e}"));
    }
    let policy = |c: Client| async move {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"));
        let api: Api<DynamicObject> = Api::namespaced_with(c, ns, &ar);
        let p = api.get("ipfs-cluster-filters").await.unwrap();
        p.data["spec"]["wasm"].as_array().unwrap().iter().find(|w| w["rootID"] == "router").unwrap()["config"].clone()
    };
    assert_eq!(policy(c.clone()).await["credentials"]["bearer_tokens"][0], "ci-4b1d0c0ffee5eed5a1t");
    let before = settled(&c, ns).await;
    assert!(before.len() > 25, "{before:?}");

    let err = run_ok(&s.admin(), ns, &["up"]);
    assert!(err.contains("Envoy Gateway is present") && err.contains("cert-manager is present"), "{err}");
    let after = snapshot(&c, ns).await;
    let changed: Vec<_> = after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).collect();
    assert!(changed.is_empty() && after.len() == before.len(), "changed by the second up: {changed:?}");
    assert_eq!(err.matches("(0 changed)").count(), 5, "a rerun changed something:\n{err}");
    // Without --router-config the running configuration is kept, not reset; with the same
    // file again nothing is written either.
    assert_eq!(policy(c.clone()).await["credentials"]["bearer_tokens"][0], "ci-4b1d0c0ffee5eed5a1t");
    let err = run_ok(&s.admin(), ns, &["up", "--router-config", router_file.to_str().unwrap()]);
    assert_eq!(err.matches("(0 changed)").count(), 5, "the same router configuration changed something:\n{err}");
    assert_eq!(snapshot(&c, ns).await, before);

    // Gateway reads take the native route while the gateway is public; once a credential
    // guards it, the route is gone and the router decides every read.
    let routes = |c: Client| async move {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"));
        let api: Api<DynamicObject> = Api::namespaced_with(c, ns, &ar);
        api.list(&Default::default()).await.unwrap().items.into_iter().filter_map(|r| r.metadata.name).collect::<Vec<_>>()
    };
    assert!(routes(c.clone()).await.contains(&"ipfs-cluster-reads".to_string()));
    std::fs::write(&router_file, r#"{"gateway": "credential", "credentials": {"bearer_tokens": ["ci-4b1d0c0ffee5eed5a1t"]}}"#).unwrap();
    let err = run_ok(&s.admin(), ns, &["up", "--router-config", router_file.to_str().unwrap()]);
    assert!(err.contains("HTTPRoute/ipfs-cluster-reads deleted"), "{err}");
    let left = routes(c.clone()).await;
    assert!(!left.contains(&"ipfs-cluster-reads".to_string()) && left.contains(&"ipfs-cluster-gateway".to_string()), "{left:?}");

    // Probes are Envoy's own answer while health is passive; in active mode the health filter
    // answers them, so the probes route and its direct response go, and the filter's policy
    // on the HTTP listener comes.
    let policies = |c: Client| async move {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"));
        let api: Api<DynamicObject> = Api::namespaced_with(c, ns, &ar);
        api.list(&Default::default()).await.unwrap().items.into_iter().filter_map(|r| r.metadata.name).collect::<Vec<_>>()
    };
    assert!(left.contains(&"ipfs-cluster-probes".to_string()), "{left:?}");
    assert!(!policies(c.clone()).await.contains(&"ipfs-cluster-health-http".to_string()));
    let health_file = router_file.with_file_name("health.json");
    std::fs::write(&health_file, r#"{"active": {}}"#).unwrap();
    let args = ["up", "--router-config", router_file.to_str().unwrap(), "--health-config", health_file.to_str().unwrap()];
    let err = run_ok(&s.admin(), ns, &args);
    assert!(err.contains("HTTPRoute/ipfs-cluster-probes deleted") && err.contains("HTTPRouteFilter/ipfs-cluster-health-ok deleted"), "{err}");
    assert!(!routes(c.clone()).await.contains(&"ipfs-cluster-probes".to_string()));
    assert!(policies(c.clone()).await.contains(&"ipfs-cluster-health-http".to_string()));
    // And back: the policy on the HTTP listener goes.
    std::fs::write(&health_file, "{}").unwrap();
    let err = run_ok(&s.admin(), ns, &args);
    assert!(err.contains("EnvoyExtensionPolicy/ipfs-cluster-health-http deleted"), "{err}");
    assert!(routes(c.clone()).await.contains(&"ipfs-cluster-probes".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn up_killed_midway_then_rerun_converges() {
    let s = support::server();
    let ns = "t-killed";
    let c = support::client(&s.admin()).await;
    // No pod becomes ready: `up` stops at step 3, waiting, and is killed there.
    support::pause(&c, ns).await;
    let mut child = deployer(&s.admin(), ns, &["up", "--replicas", "3"]).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let start = Instant::now();
    let mut seen = String::new();
    for line in stderr.split(b'\n') {
        let line = String::from_utf8_lossy(&line.unwrap()).into_owned();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("[3/6]") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no step 3 in time:\n{seen}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    assert!(swarm_services(&svcs.list(&Default::default()).await.unwrap().items).is_empty(), "killed before step 4");
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let ids_before = secrets.get("ipfs-cluster-identities").await.unwrap().data;

    support::resume(&c, ns).await;
    let err = run_ok(&s.admin(), ns, &["up"]);
    assert!(err.contains("[6/6]"), "{err}");
    assert_eq!(swarm_services(&svcs.list(&Default::default()).await.unwrap().items).len(), 6);
    // The identities made before the kill are kept, not regenerated.
    assert_eq!(secrets.get("ipfs-cluster-identities").await.unwrap().data, ids_before);
    rerun_changes_nothing(&s.admin(), &c, ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn down_keeps_volumes_and_secret_and_purge_removes_them() {
    let s = support::server();
    let ns = "t-down";
    let c = support::client(&s.admin()).await;
    run_ok(&s.admin(), ns, &["up", "--replicas", "2"]);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    // Two volume claim templates (Kubo, ipfs-cluster) per pod.
    let start = Instant::now();
    while pvcs.list(&Default::default()).await.unwrap().items.len() < 4 {
        assert!(start.elapsed() < Duration::from_secs(60), "the StatefulSet's PVCs did not appear");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let secret = secrets.get("ipfs-cluster-cluster-secret").await.unwrap().data;

    let err = run_ok(&s.admin(), ns, &["down"]);
    assert!(err.contains("kept:"), "{err}");
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(c.clone(), ns);
    assert!(sts.get_opt("ipfs-cluster").await.unwrap().is_none());
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    assert!(svcs.list(&Default::default()).await.unwrap().items.is_empty(), "Services left after down");
    assert_eq!(pvcs.list(&Default::default()).await.unwrap().items.len(), 4, "down must keep the volumes");
    assert_eq!(secrets.get("ipfs-cluster-cluster-secret").await.unwrap().data, secret);

    // `up` after `down` reuses the kept secret.
    run_ok(&s.admin(), ns, &["up", "--replicas", "2"]);
    assert_eq!(secrets.get("ipfs-cluster-cluster-secret").await.unwrap().data, secret);

    let out = run(&s.admin(), ns, &["down", "--purge"]);
    assert_eq!(out.status.code(), Some(10), "--purge without confirmation must abort");
    run_ok(&s.admin(), ns, &["down", "--purge", "--yes-delete-namespace", ns]);
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    assert!(nss.get_opt(ns).await.unwrap().is_none());
    let all_pvcs: Api<PersistentVolumeClaim> = Api::all(c.clone());
    let left = all_pvcs.list(&Default::default()).await.unwrap().items;
    assert!(left.iter().all(|p| p.metadata.namespace.as_deref() != Some(ns)), "volumes left after --purge");
}

/// Each Service's name and resourceVersion.
async fn versions(svcs: &Api<Service>) -> BTreeMap<String, String> {
    svcs.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.metadata.name.unwrap(), s.metadata.resource_version.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_3_to_5_adds_exactly_the_swarm_services_of_two_pods() {
    let s = support::server();
    let ns = "t-scale";
    let c = support::client(&s.admin()).await;
    run_ok(&s.admin(), ns, &["up", "--replicas", "3"]);
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    let before = versions(&svcs).await;
    run_ok(&s.admin(), ns, &["scale", "5"]);
    let after = versions(&svcs).await;
    let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).cloned().collect();
    assert_eq!(added, ["ipfs-cluster-swarm-3", "ipfs-cluster-swarm-3-udp", "ipfs-cluster-swarm-4", "ipfs-cluster-swarm-4-udp"]);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} changed by scale");
    }
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(c.clone(), ns);
    assert_eq!(sts.get("ipfs-cluster").await.unwrap().spec.unwrap().replicas, Some(5));
    // Scaling down removes the swarm Services of the gone ordinals.
    run_ok(&s.admin(), ns, &["scale", "3"]);
    assert_eq!(swarm_services(&svcs.list(&Default::default()).await.unwrap().items).len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_rights_gets_the_forbidden_message() {
    let s = support::server();
    for args in [&["up"][..], &["status"], &["down"]] {
        let out = run(&s.nobody(), "t-forbidden", args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{args:?}: {err}");
        assert!(err.contains("forbidden: cannot ") && err.contains("hint: the deployer needs rights to"), "{args:?}: {err}");
    }
    let out = run(&s.nobody(), "t-forbidden", &["up"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot list deployments.apps"), "{err}");
}

/// Write requests (create, update, patch, delete) by the deployer's user in the audit log
/// after byte `from` that touch namespace `ns` or the namespace itself. Server-side dry runs
/// are not writes, nor are requests through the pod proxy (Kubo's RPC reads, such as the
/// announced addresses `up` reports, are POSTs, audited as "create").
fn writes_since(log: &Path, from: usize, ns: &str) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap();
    text[from..]
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            let r = &e["objectRef"];
            e["stage"] == "ResponseComplete"
                && e["user"]["username"] == "admin"
                && ["create", "update", "patch", "delete", "deletecollection"].contains(&e["verb"].as_str().unwrap_or(""))
                && !e["requestURI"].as_str().unwrap_or("").contains("dryRun")
                && r["subresource"] != "proxy"
                && (r["namespace"] == ns || (r["resource"] == "namespaces" && r["name"] == ns))
        })
        .map(|e| format!("{} {}", e["verb"].as_str().unwrap_or(""), e["requestURI"].as_str().unwrap_or("")))
        .collect()
}

fn audit_len(log: &Path) -> usize {
    std::fs::metadata(log).map(|m| m.len() as usize).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_up_sends_no_write_request() {
    let s = support::server();
    let ns = "t-nowrite";
    let c = support::client(&s.admin()).await;
    let from = audit_len(&s.audit_log());
    run_ok(&s.admin(), ns, &["up", "--replicas", "2"]);
    // The same filter sees the first run's writes: it is not blind.
    let first = writes_since(&s.audit_log(), from, ns);
    assert!(first.len() > 20, "the first up's writes were not seen in the audit log: {first:?}");
    settled(&c, ns).await;
    let from = audit_len(&s.audit_log());
    run_ok(&s.admin(), ns, &["up"]);
    // The audit log is written before each response is sent (blocking mode).
    let second = writes_since(&s.audit_log(), from, ns);
    assert!(second.is_empty(), "the second up wrote:\n{}", second.join("\n"));
}

/// Runs `up` and kills it (SIGKILL) as soon as its stderr shows `marker`; returns what it
/// printed until then.
fn up_killed_at(kubeconfig: &Path, ns: &str, replicas: &str, marker: &str) -> String {
    let mut child = deployer(kubeconfig, ns, &["up", "--replicas", replicas]).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let start = Instant::now();
    let mut seen = String::new();
    for line in stderr.split(b'\n') {
        let line = String::from_utf8_lossy(&line.unwrap()).into_owned();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            child.kill().unwrap();
            child.wait().unwrap();
            return seen;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no {marker} in time:\n{seen}");
        }
    }
    let _ = child.wait();
    panic!("up ended before {marker}:\n{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_killed_at_several_points_then_rerun_converges() {
    let s = support::server();
    let ns = "t-kills";
    let c = support::client(&s.admin()).await;
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    // Killed right after each step's objects were sent, one run after the other (each rerun
    // starts from what the killed ones left).
    up_killed_at(&s.admin(), ns, "3", "[2/6]");
    let ids = secrets.get("ipfs-cluster-identities").await.unwrap().data;
    let cluster_secret = secrets.get("ipfs-cluster-cluster-secret").await.unwrap().data;
    for marker in ["[1/6]", "[4/6]", "[5/6]", "[6/6]"] {
        let seen = up_killed_at(&s.admin(), ns, "3", marker);
        assert_eq!(secrets.get("ipfs-cluster-identities").await.unwrap().data, ids, "identities changed by a run killed at {marker}:\n{seen}");
    }
    let err = run_ok(&s.admin(), ns, &["up", "--replicas", "3"]);
    assert!(err.contains("[6/6]"), "{err}");
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    assert_eq!(swarm_services(&svcs.list(&Default::default()).await.unwrap().items).len(), 6);
    assert_eq!(secrets.get("ipfs-cluster-identities").await.unwrap().data, ids);
    assert_eq!(secrets.get("ipfs-cluster-cluster-secret").await.unwrap().data, cluster_secret);
    rerun_changes_nothing(&s.admin(), &c, ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_takes_back_a_field_another_manager_changed_and_keeps_the_others() {
    use kube::api::{Patch, PatchParams};
    let s = support::server();
    let ns = "t-manager";
    let c = support::client(&s.admin()).await;
    run_ok(&s.admin(), ns, &["up", "--replicas", "2"]);
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> = Api::namespaced(c.clone(), ns);
    // Someone else's `kubectl apply --server-side --force-conflicts`: takes the deployer's
    // maxUnavailable, and adds an annotation of its own.
    let theirs = serde_json::json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "ipfs-cluster", "annotations": {"example.org/owner": "storage-team"}},
        "spec": {"maxUnavailable": 2}});
    pdbs.patch("ipfs-cluster", &PatchParams::apply("storage-team").force(), &Patch::Apply(theirs)).await.unwrap();
    let managers = |p: &k8s_openapi::api::policy::v1::PodDisruptionBudget| -> Vec<String> {
        p.metadata.managed_fields.clone().unwrap_or_default().into_iter().filter_map(|m| m.manager).collect()
    };
    let edited = pdbs.get("ipfs-cluster").await.unwrap();
    assert_eq!(edited.spec.as_ref().unwrap().max_unavailable, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2)));

    let err = run_ok(&s.admin(), ns, &["up"]);
    assert!(err.contains("PodDisruptionBudget (1 changed)"), "the edit went unnoticed:\n{err}");
    let back = pdbs.get("ipfs-cluster").await.unwrap();
    assert_eq!(back.spec.as_ref().unwrap().max_unavailable, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)));
    assert_eq!(back.metadata.annotations.clone().unwrap_or_default().get("example.org/owner").map(String::as_str), Some("storage-team"));
    assert!(managers(&back).contains(&"storage-team".to_string()), "{:?}", managers(&back));
    // The deployer owns maxUnavailable again: the other manager kept only its annotation.
    let others: Vec<_> = back.metadata.managed_fields.unwrap_or_default().into_iter().filter(|m| m.manager.as_deref() == Some("storage-team")).collect();
    let fields = serde_json::to_string(&others[0].fields_v1).unwrap();
    assert!(!fields.contains("maxUnavailable") && fields.contains("example.org/owner"), "{fields}");
    let err = run_ok(&s.admin(), ns, &["up"]);
    assert_eq!(err.matches("(0 changed)").count(), 5, "not converged:\n{err}");
}

/// The ready pods `deployer status --output json` reports.
fn ready_pods(kubeconfig: &Path, ns: &str) -> Vec<String> {
    let out = run(kubeconfig, ns, &["status", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("status --output json: {e}"));
    let mut pods: Vec<String> = v["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ready"] == true && p["phase"] == "Running")
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    pods.sort();
    pods
}

/// Name -> UID of the namespace's PersistentVolumeClaims.
async fn claims(c: &Client, ns: &str) -> BTreeMap<String, String> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
    pvcs.list(&Default::default()).await.unwrap().items.into_iter().map(|p| (p.metadata.name.unwrap(), p.metadata.uid.unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn down_then_up_keeps_identities_and_volumes() {
    let s = support::server();
    let ns = "t-downup";
    let c = support::client(&s.admin()).await;
    run_ok(&s.admin(), ns, &["up", "--replicas", "2"]);
    // The pods the StatefulSet controller made, Running and Ready on KWOK's node.
    assert_eq!(ready_pods(&s.admin(), ns), ["ipfs-cluster-0", "ipfs-cluster-1"]);
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let ids = secrets.get("ipfs-cluster-identities").await.unwrap().data;
    let volumes = claims(&c, ns).await;
    assert_eq!(volumes.len(), 4, "{volumes:?}");

    run_ok(&s.admin(), ns, &["down"]);
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), ns);
    let start = Instant::now();
    // The garbage collector removes the StatefulSet's pods; KWOK lets them go.
    while !pods.list(&Default::default()).await.unwrap().items.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "the pods outlived their StatefulSet");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(ready_pods(&s.admin(), ns).is_empty());

    run_ok(&s.admin(), ns, &["up", "--replicas", "2"]);
    assert_eq!(ready_pods(&s.admin(), ns), ["ipfs-cluster-0", "ipfs-cluster-1"]);
    assert_eq!(secrets.get("ipfs-cluster-identities").await.unwrap().data, ids, "identities regenerated");
    // The very same claims (same UIDs), mounted by the new pods.
    assert_eq!(claims(&c, ns).await, volumes, "volumes replaced");
    for p in pods.list(&ListParams::default().labels("app.kubernetes.io/name=ipfs-cluster")).await.unwrap() {
        let used: Vec<String> = p.spec.unwrap().volumes.unwrap_or_default().into_iter().filter_map(|v| v.persistent_volume_claim.map(|c| c.claim_name)).collect();
        assert!(!used.is_empty() && used.iter().all(|u| volumes.contains_key(u)), "{used:?} not in {volumes:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_down_then_up_the_controller_removes_and_brings_back_pods() {
    let s = support::server();
    let ns = "t-scale-down";
    let c = support::client(&s.admin()).await;
    run_ok(&s.admin(), ns, &["up", "--replicas", "3"]);
    assert_eq!(ready_pods(&s.admin(), ns), ["ipfs-cluster-0", "ipfs-cluster-1", "ipfs-cluster-2"]);
    let volumes = claims(&c, ns).await;
    assert_eq!(volumes.len(), 6, "{volumes:?}");

    run_ok(&s.admin(), ns, &["scale", "1"]);
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), ns);
    let start = Instant::now();
    while pods.list(&ListParams::default().labels("app.kubernetes.io/name=ipfs-cluster")).await.unwrap().items.len() != 1 {
        assert!(start.elapsed() < Duration::from_secs(60), "the StatefulSet controller did not remove the pods");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(ready_pods(&s.admin(), ns), ["ipfs-cluster-0"]);
    // Scaling down never deletes data: the claims of the gone ordinals stay.
    assert_eq!(claims(&c, ns).await, volumes);

    run_ok(&s.admin(), ns, &["scale", "3"]);
    assert_eq!(ready_pods(&s.admin(), ns), ["ipfs-cluster-0", "ipfs-cluster-1", "ipfs-cluster-2"]);
    assert_eq!(claims(&c, ns).await, volumes, "the returning peers got new volumes");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_rides_out_an_api_server_restart() {
    // A server of its own: the restart would disturb the other tests.
    let s = support::start();
    let ns = "t-restart";
    let c = support::client(&s.admin()).await;
    // A longer wait than the other tests': after the outage the controllers' watches come back
    // with client-go's backoff (up to 30 s per informer) before the StatefulSet controller,
    // the scheduler and KWOK see the pods again; 90 s was once too short for that on 2 cores.
    // What is tested is that `up` rides out the outage, not how fast the controllers recover.
    let mut child = deployer(&s.admin(), ns, &["up", "--replicas", "2", "--timeout", "240"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("[2/6]") {
        assert!(stderr.read_line(&mut seen).unwrap() > 0, "up ended before step 2:\n{seen}");
    }
    // Down for 15 s: longer than a client that gives up after a few seconds would wait,
    // as a managed control plane's upgrade can be.
    s.restart_apiserver(Duration::from_secs(15));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    eprintln!("up across the restart ({status:?}):\n{seen}{rest}");
    // It rides out the restart: the reads and applies in flight are retried until the
    // server answers again, and the run completes.
    assert!(status.success(), "up did not ride out the restart ({status:?}):\n{seen}{rest}");
    assert!(rest.contains("[6/6]"), "{rest}");
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let ids = secrets.get("ipfs-cluster-identities").await.unwrap().data;
    assert_eq!(ready_pods(&s.admin(), ns), ["ipfs-cluster-0", "ipfs-cluster-1"]);
    rerun_changes_nothing(&s.admin(), &c, ns).await;
    assert_eq!(secrets.get("ipfs-cluster-identities").await.unwrap().data, ids);
}

/// A deployer command with its own arguments only (no helper defaults such as --timeout).
fn run_bare(kubeconfig: &Path, ns: &str, args: &[&str]) -> Output {
    let e = env();
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployer"));
    c.arg("--kubeconfig").arg(kubeconfig).args(["--namespace", ns, "--domain", "ipfs.example.test"]);
    c.arg("--filters-dir").arg(e.filters.path()).args(args);
    if args.first() == Some(&"up") {
        c.arg("--bundle").arg(e.bundle.path());
        if !args.contains(&"--address-timeout") {
            c.args(["--address-timeout", "1"]);
        }
        if !args.contains(&"--controller-timeout") {
            c.args(["--controller-timeout", "1"]);
        }
    }
    let out = c.output().expect("deployer runs");
    eprintln!("$ deployer {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

async fn namespace(c: &Client, ns: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let body: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    api.create(&Default::default(), &body).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_refused_midway_is_forbidden_not_unreachable() {
    let s = support::server();
    let ns = "t-partial";
    let c = support::client(&s.admin()).await;
    namespace(&c, ns).await;
    // `nobody` may read secrets and StatefulSets here, but not list Services.
    let rbac = |kind: &str, body: serde_json::Value| {
        let c = c.clone();
        let kind = kind.to_string();
        async move {
            let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", &kind));
            let api: Api<DynamicObject> = Api::namespaced_with(c, ns, &ar);
            api.create(&Default::default(), &serde_json::from_value(body).unwrap()).await.unwrap();
        }
    };
    rbac("Role", serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "some"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
                  {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"]}]})).await;
    rbac("RoleBinding", serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "some"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "some"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "nobody"}]})).await;
    let out = run_bare(&s.nobody(), ns, &["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("cannot list services in namespace t-partial"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_not_served_is_exit_7_before_anything_is_written() {
    let s = support::server();
    let ns = "t-istio";
    // No Istio on this server: WasmPlugin is not served (the Gateway API is: the shared
    // server has the bundle's CRDs).
    let out = run_bare(&s.admin(), ns, &["up", "--mesh", "istio", "--timeout", "90"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("the cluster does not serve") && err.contains("install"), "{err}");
    let c = support::client(&s.admin()).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c);
    assert!(nss.get_opt(ns).await.unwrap().is_none(), "written before the kinds were checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_that_runs_out_is_exit_8() {
    let s = support::server();
    let ns = "t-timeout";
    let c = support::client(&s.admin()).await;
    support::pause(&c, ns).await;
    let out = run_bare(&s.admin(), ns, &["up", "--replicas", "1", "--timeout", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("timed out after 3s waiting for"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_the_server_refuses_is_exit_9() {
    let s = support::server();
    let ns = "t-refused";
    let c = support::client(&s.admin()).await;
    namespace(&c, ns).await;
    // A Service by the headless Service's name with a cluster IP: the IP is immutable, so
    // applying `clusterIP: None` over it is refused (422).
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    let body: Service = serde_json::from_value(serde_json::json!({"metadata": {"name": "ipfs-cluster-peers"},
        "spec": {"ports": [{"port": 9096}]}}))
    .unwrap();
    svcs.create(&Default::default(), &body).await.unwrap();
    let out = run_bare(&s.admin(), ns, &["up", "--replicas", "1", "--timeout", "90"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("the API server refused applying Service/ipfs-cluster-peers"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_filter_hashes_wait_for_every_server_pod() {
    let s = support::server();
    let ns = "t-rollout";
    let c = support::client(&s.admin()).await;
    run_ok(&s.admin(), ns, &["up", "--replicas", "1"]);
    let hashes = || {
        let c = c.clone();
        async move {
            let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"));
            let api: Api<DynamicObject> = Api::namespaced_with(c, ns, &ar);
            let p = api.get("ipfs-cluster-filters").await.unwrap();
            p.data["spec"]["wasm"].as_array().unwrap().iter().map(|w| w["code"]["http"]["sha256"].clone()).collect::<Vec<_>>()
        }
    };
    let before = hashes().await;
    // New filter bytes while no new pod can become ready: the old pods keep serving the
    // old bytes, so the policy must keep pinning the old hashes.
    let filters = support::scratch("filters-new");
    for f in ["health", "router", "add_response"] {
        std::fs::write(filters.path().join(format!("{f}.wasm")), format!("\0asm\x01\0\0\0{f} v2")).unwrap();
    }
    support::pause(&c, ns).await;
    let out = run_bare(&s.admin(), ns, &["up", "--timeout", "5", "--filters-dir", filters.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("Deployment ipfs-cluster-filters available"), "{err}");
    assert_eq!(hashes().await, before, "new hashes pinned while old pods still serve");
    support::resume(&c, ns).await;
    run_ok(&s.admin(), ns, &["up", "--filters-dir", filters.path().to_str().unwrap()]);
    assert_ne!(hashes().await, before);
}

/// Stands in for a cloud provider's load balancer controller in one namespace: after a
/// delay, gives each swarm Service an address (203.0.113.10 + ordinal, TEST-NET-3).
fn give_addresses(c: Client, ns: &'static str, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let svcs: Api<Service> = Api::namespaced(c, ns);
        loop {
            for svc in svcs.list(&ListParams::default().labels("app.kubernetes.io/component=swarm")).await.map(|l| l.items).unwrap_or_default() {
                let name = svc.metadata.name.clone().unwrap();
                let has = svc.status.and_then(|s| s.load_balancer).and_then(|l| l.ingress).is_some_and(|i| !i.is_empty());
                let ord: u32 = name.trim_end_matches("-udp").rsplit('-').next().unwrap().parse().unwrap();
                if !has {
                    let st = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": format!("203.0.113.{}", 10 + ord)}]}}});
                    let _ = svcs.patch_status(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&st)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn up_waits_for_swarm_addresses_and_hands_them_to_the_pods() {
    let s = support::server();
    let ns = "t-swarm";
    let c = support::client(&s.admin()).await;
    give_addresses(c.clone(), ns, Duration::from_secs(20));
    let out = run_bare(&s.admin(), ns, &["up", "--replicas", "2", "--timeout", "90", "--address-timeout", "120"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("public swarm addresses handed to the pods"), "{err}");
    assert!(!err.contains("no public swarm address yet"), "{err}");
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(c.clone(), ns);
    let data = cms.get("ipfs-cluster-announce").await.unwrap().data.unwrap();
    let addrs: Vec<String> = serde_json::from_str(&data["ipfs-cluster-1"]).unwrap();
    assert_eq!(addrs, ["/ip4/203.0.113.11/tcp/4001", "/ip4/203.0.113.11/udp/4001/quic-v1"]);
    // `status` shows each peer's public addresses.
    let out = run_bare(&s.admin(), ns, &["status", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["swarm"]["ipfs-cluster-0"], serde_json::json!(["/ip4/203.0.113.10/tcp/4001", "/ip4/203.0.113.10/udp/4001/quic-v1"]));
    assert!(!report["pending"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("swarm")), "{report}");
    // A rerun with the addresses in place changes nothing.
    let err = run_ok(&s.admin(), ns, &["up"]);
    assert_eq!(err.matches("(0 changed)").count(), 5, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_port_mode_announces_the_nodes_external_ip() {
    let s = support::server();
    let ns = "t-nodeport";
    let c = support::client(&s.admin()).await;
    // The real scheduler places the pod on KWOK's node (the only schedulable one); that node
    // gets an external address as a cloud's node has one. KWOK keeps it: only its
    // node-initialize stage writes addresses, and that has run before the tests start.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.clone());
    let kwok: Vec<_> = nodes.list(&ListParams::default().labels("type=kwok")).await.unwrap().items;
    assert_eq!(kwok.len(), 1, "one KWOK node expected");
    let node = kwok[0].metadata.name.clone().unwrap();
    let mut addresses: Vec<serde_json::Value> = kwok[0].status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default()
        .into_iter().filter(|a| a.type_ != "ExternalIP").map(|a| serde_json::json!({"type": a.type_, "address": a.address})).collect();
    addresses.push(serde_json::json!({"type": "ExternalIP", "address": "198.51.100.7"}));
    let st = serde_json::json!({"status": {"addresses": addresses}});
    nodes.patch_status(&node, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&st)).await.unwrap();
    let out = run_bare(&s.admin(), ns, &["up", "--replicas", "1", "--swarm-service-type", "node-port", "--timeout", "90", "--address-timeout", "60"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), ns);
    let placed = pods.get("ipfs-cluster-0").await.unwrap().spec.unwrap().node_name;
    assert_eq!(placed.as_deref(), Some(node.as_str()), "not scheduled on KWOK's node");
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
    let node_port = |name: &'static str| {
        let svcs = svcs.clone();
        async move {
            let svc = svcs.get(name).await.unwrap().spec.unwrap();
            assert_eq!(svc.type_.as_deref(), Some("NodePort"));
            svc.ports.unwrap()[0].node_port.unwrap()
        }
    };
    let (tcp, udp) = (node_port("ipfs-cluster-swarm-0").await, node_port("ipfs-cluster-swarm-0-udp").await);
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(c.clone(), ns);
    let data = cms.get("ipfs-cluster-announce").await.unwrap().data.unwrap();
    let mut want = vec![format!("/ip4/198.51.100.7/tcp/{tcp}"), format!("/ip4/198.51.100.7/udp/{udp}/quic-v1")];
    want.sort();
    assert_eq!(serde_json::from_str::<Vec<String>>(&data["ipfs-cluster-0"]).unwrap(), want);
}

/// The Prometheus Operator's PodMonitor kind, as a CRD that admits any spec: the operator's
/// own CRDs are not among ../shared/crds (and nothing may be downloaded here), and what is
/// tested is the deployer's choice by what the server serves, not the operator's schema.
fn stand_in_pod_monitor_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "podmonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": "PodMonitor", "plural": "podmonitors", "singular": "podmonitor", "listKind": "PodMonitorList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pod_monitor_is_applied_once_prometheus_operator_kinds_are_served() {
    // A server of its own: a kind appearing midway would change what the other tests' runs
    // apply.
    let s = support::start();
    let ns = "t-monitor";
    let err = run_ok(&s.admin(), ns, &["up", "--replicas", "1"]);
    assert!(err.contains("PodMonitor ipfs-cluster-edge left out: the cluster does not serve monitoring.coreos.com/v1"), "{err}");
    let c = support::client(&s.admin()).await;

    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd = stand_in_pod_monitor_crd();
    crds.patch("podmonitors.monitoring.coreos.com", &kube::api::PatchParams::apply("ipfs-edge-tests"), &kube::api::Patch::Apply(&crd))
        .await
        .unwrap();
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PodMonitor"));
    let monitors: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, &ar);
    let start = Instant::now();
    while monitors.list(&ListParams::default()).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "PodMonitor never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let err = run_ok(&s.admin(), ns, &["up"]);
    assert!(!err.contains("left out"), "{err}");
    assert!(err.contains("[5/6]") && err.contains("(1 changed)"), "the PodMonitor is step 5's only change:\n{err}");
    let pm = monitors.get("ipfs-cluster-edge").await.unwrap();
    assert_eq!(pm.data["spec"]["selector"]["matchLabels"]["gateway.envoyproxy.io/owning-gateway-name"], "ipfs-cluster");
    assert_eq!(pm.data["spec"]["podMetricsEndpoints"][0]["path"], "/stats/prometheus");
    rerun_changes_nothing(&s.admin(), &c, ns).await;
}

/// The EnvoyExtensionPolicies that run the router (one per set of HTTPS routes).
const ROUTER_POLICIES: [&str; 3] = ["ipfs-cluster-filters", "ipfs-cluster-health", "ipfs-cluster-add"];

/// The router's configuration in the namespace's EnvoyExtensionPolicies: the same in each
/// (a token accepted on some routes and refused on others would be a broken write).
async fn router_config(c: &Client, ns: &str) -> serde_json::Value {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"));
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, &ar);
    let mut configs = Vec::new();
    for name in ROUTER_POLICIES {
        let p = api.get(name).await.unwrap();
        configs.push(p.data["spec"]["wasm"].as_array().unwrap().iter().find(|w| w["rootID"] == "router").unwrap()["config"].clone());
    }
    assert!(configs.iter().all(|c| *c == configs[0]), "the router policies disagree: {configs:#?}");
    configs.swap_remove(0)
}

/// What the router filter, configured as the policy says, answers to `Bearer <token>`
/// (the filter's own logic; tests/e2e/tests/tokens.rs runs the same digests in Envoy in
/// front of the real cluster).
fn filter_accepts(config: &serde_json::Value, token: &str) -> bool {
    let policy = edge_logic::router::Policy::from_json(config.to_string().as_bytes()).unwrap();
    let header = format!("Bearer {token}");
    policy.credentials.check(&[header.as_bytes()]) == edge_logic::router::AuthResult::Valid
}

async fn api_tokens(c: &Client, ns: &str) -> BTreeMap<String, String> {
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let s = secrets.get("ipfs-cluster-api-tokens").await.unwrap();
    s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_created_used_and_revoked_touching_only_their_secret_and_the_policy() {
    let s = support::server();
    let ns = "t-tokens";
    let c = support::client(&s.admin()).await;
    let err = run_ok(&s.admin(), ns, &["up", "--replicas", "1"]);
    // A new cluster gets an admin token, and `up` says how to read it.
    let read = format!("kubectl -n {ns} get secret ipfs-cluster-api-tokens -o jsonpath='{{.data.admin}}' | base64 -d");
    assert!(err.contains("API token \"admin\" created") && err.contains(&read), "{err}");
    let tokens = api_tokens(&c, ns).await;
    let admin = tokens["admin"].clone();
    assert_eq!(tokens.len(), 1);
    let cfg = router_config(&c, ns).await;
    assert_eq!(cfg["credentials"]["bearer_tokens"], serde_json::json!([edge_logic::router::bearer_digest(&admin)]));
    assert!(filter_accepts(&cfg, &admin));
    let before = settled(&c, ns).await;

    // create: the token on stdout, once; only the Secret and the policy written.
    let from = audit_len(&s.audit_log());
    let out = run(&s.admin(), ns, &["token", "create", "ci"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ci = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(ci.len(), 43, "{ci:?}");
    let writes = writes_since(&s.audit_log(), from, ns);
    // The Secret first (a token the policies accept is never lost), then the policies.
    assert_eq!(writes.len(), 1 + ROUTER_POLICIES.len(), "{writes:?}");
    assert!(writes[0].contains("/secrets/ipfs-cluster-api-tokens"), "{writes:?}");
    for p in ROUTER_POLICIES {
        assert!(writes[1..].iter().any(|w| w.contains(&format!("/envoyextensionpolicies/{p}"))), "{p} not written: {writes:?}");
    }
    let after = snapshot(&c, ns).await;
    let changed: Vec<&String> = after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
    let mut expected: Vec<String> = ROUTER_POLICIES.iter().map(|p| format!("EnvoyExtensionPolicy/t-tokens/{p}")).collect();
    expected.push("Secret/t-tokens/ipfs-cluster-api-tokens".into());
    expected.sort();
    assert_eq!(changed, expected.iter().collect::<Vec<_>>(), "token create changed more than its Secret and the policies");
    let cfg = router_config(&c, ns).await;
    assert!(filter_accepts(&cfg, &ci) && filter_accepts(&cfg, &admin), "{cfg}");
    assert!(!cfg.to_string().contains(&ci) && !cfg.to_string().contains(&admin), "a token in the policy: {cfg}");
    assert_eq!(api_tokens(&c, ns).await.get("ci"), Some(&ci));
    let out = run(&s.admin(), ns, &["token", "list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["tokens"], serde_json::json!([{"name": "admin", "accepted": true}, {"name": "ci", "accepted": true}]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&ci));
    // A name taken, a name that is no Secret key: usage errors, nothing written.
    let from = audit_len(&s.audit_log());
    assert_eq!(run(&s.admin(), ns, &["token", "create", "ci"]).status.code(), Some(2));
    assert_eq!(run(&s.admin(), ns, &["token", "create", "No_Good"]).status.code(), Some(2));
    assert_eq!(run(&s.admin(), ns, &["token", "revoke", "nope"]).status.code(), Some(2));
    assert!(writes_since(&s.audit_log(), from, ns).is_empty());

    // A rerun of `up` keeps both tokens and writes nothing.
    rerun_changes_nothing(&s.admin(), &c, ns).await;
    assert_eq!(api_tokens(&c, ns).await.len(), 2);

    // revoke: refused by the filter as configured, gone from the Secret; admin still works.
    let before = snapshot(&c, ns).await;
    run_ok(&s.admin(), ns, &["token", "revoke", "ci"]);
    let cfg = router_config(&c, ns).await;
    assert!(!filter_accepts(&cfg, &ci) && filter_accepts(&cfg, &admin), "{cfg}");
    assert_eq!(api_tokens(&c, ns).await.keys().collect::<Vec<_>>(), ["admin"]);
    let after = snapshot(&c, ns).await;
    let changed: Vec<&String> = after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
    assert_eq!(changed.len(), 1 + ROUTER_POLICIES.len(), "{changed:?}");
    // Revoking the last token leaves an empty Secret, which `up` keeps (no new admin token).
    run_ok(&s.admin(), ns, &["token", "revoke", "admin"]);
    assert!(!filter_accepts(&router_config(&c, ns).await, &admin));
    let err = run_ok(&s.admin(), ns, &["up"]);
    assert!(!err.contains("created"), "{err}");
    assert!(api_tokens(&c, ns).await.is_empty());
}
