//! Step 1 of `up` against a cluster that already has parts of it, on a real kube-apiserver
//! of its own (this file is its own test process, so the cluster-wide objects it makes do
//! not meet the other tests'): a cert-manager without Gateway API support is refused before
//! anything is written, with the fix; Gateway API CRDs another manager owns (as GKE's
//! managed Gateway API does) are left alone; `--skip-crds` applies none.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::Value;
use std::process::{Command, Output};

fn deployer(s: &support::Server, bundle: &support::Scratch, filters: &support::Scratch, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("--kubeconfig")
        .arg(s.admin())
        .args(["--namespace", "t-install", "--domain", "ipfs.example.test"])
        .arg("--filters-dir")
        .arg(filters.path())
        .args(args)
        .arg("--bundle")
        .arg(bundle.path())
        .args(["--timeout", "90", "--address-timeout", "1", "--controller-timeout", "1"])
        .output()
        .unwrap();
    eprintln!("$ deployer {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

fn docs(path: &std::path::Path) -> Vec<Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text).filter_map(|d| Value::deserialize(d).ok()).filter(|v| v.get("kind").is_some()).collect()
}

/// Server-side apply as another tool would, under its own field manager.
async fn apply_as(c: &Client, manager: &str, d: &Value) {
    let (group, version) = d["apiVersion"].as_str().unwrap().split_once('/').unwrap_or(("", d["apiVersion"].as_str().unwrap()));
    let mut ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, d["kind"].as_str().unwrap()));
    ar.plural = match d["kind"].as_str().unwrap() {
        "CustomResourceDefinition" => "customresourcedefinitions".into(),
        "Namespace" => "namespaces".into(),
        "Deployment" => "deployments".into(),
        k => panic!("{k}"),
    };
    let name = d["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match d["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
        None => Api::all_with(c.clone(), &ar),
    };
    api.patch(name, &PatchParams::apply(manager).force(), &Patch::Apply(d)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_cert_manager_and_foreign_gateway_api_crds() {
    // A server of its own, without the CRDs `support::server()` installs first: the
    // Gateway API CRDs here must be another manager's.
    let s = &support::start();
    let (bundle, filters) = (support::bundle(), support::filters());
    let c = support::client(&s.admin()).await;
    // The platform's Gateway API CRDs (as GKE's managed Gateway API has them), and a
    // cert-manager installed by someone else, as its release manifest has it: without
    // --enable-gateway-api.
    for d in docs(&bundle.path().join("envoy-gateway-v1.9.0.yaml")) {
        if d["kind"] == "CustomResourceDefinition" && d["spec"]["group"] == "gateway.networking.k8s.io" {
            apply_as(&c, "addon-manager", &d).await;
        }
    }
    for d in docs(&bundle.path().join("cert-manager-v1.21.1.yaml")) {
        apply_as(&c, "helm", &d).await;
    }
    // Until they are served, as they are on a cluster where cert-manager has run for a while.
    let start = std::time::Instant::now();
    loop {
        let d = kube::Discovery::new(c.clone()).filter(&["cert-manager.io", "gateway.networking.k8s.io"]).run().await;
        let served = d.is_ok_and(|d| {
            d.resolve_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate")).is_some()
                && d.resolve_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", "Issuer")).is_some()
                && d.resolve_gvk(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway")).is_some()
        });
        if served {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "CRDs never served");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    let out = deployer(s, &bundle, &filters, &["up", "--replicas", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("cert-manager runs without Gateway API support"), "{err}");
    let fix = "kubectl -n cert-manager patch deployment cert-manager --type=json -p ";
    assert!(err.contains(fix), "{err}");
    // Nothing written: no namespace of ours, no Envoy Gateway.
    let nss: Api<Namespace> = Api::all(c.clone());
    for ns in ["t-install", "envoy-gateway-system"] {
        assert!(nss.get_opt(ns).await.unwrap().is_none(), "{ns} was created before the check");
    }

    // The fix exactly as printed.
    let line = err.lines().find(|l| l.contains(fix)).unwrap();
    let patch: Value = serde_json::from_str(line.split("-p '").nth(1).unwrap().trim_end_matches('\'')).unwrap();
    // Applied as the JSON patch says (kube here is built without its json-patch support).
    let op = &patch[0];
    assert_eq!(op["op"], "add");
    let i: usize = op["path"].as_str().unwrap().strip_prefix("/spec/template/spec/containers/").unwrap().split('/').next().unwrap().parse().unwrap();
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "cert-manager");
    let mut d = deps.get("cert-manager").await.unwrap();
    d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[i].args.get_or_insert_with(Vec::new).push(op["value"].as_str().unwrap().into());
    deps.replace("cert-manager", &Default::default(), &d).await.unwrap();

    // --skip-crds: Envoy Gateway's own CRDs are not in the cluster, so it stops and says so.
    let out = deployer(s, &bundle, &filters, &["up", "--replicas", "1", "--skip-crds"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("--skip-crds leaves Envoy Gateway's CRDs to you"), "{err}");

    let out = deployer(s, &bundle, &filters, &["up", "--replicas", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cert-manager is present") && err.contains("CRDs left as they are"), "{err}");
    assert!(err.contains("gateways.gateway.networking.k8s.io: addon-manager"), "{err}");
    // The platform's CRDs were not applied over; Envoy Gateway's own were.
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let managers = |name: &'static str| {
        let crds = crds.clone();
        async move {
            let crd = crds.get(name).await.unwrap();
            crd.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect::<Vec<_>>()
        }
    };
    assert!(!managers("gateways.gateway.networking.k8s.io").await.contains(&"ipfs-edge-deployer".to_string()));
    assert!(managers("envoyextensionpolicies.gateway.envoyproxy.io").await.contains(&"ipfs-edge-deployer".to_string()));
}
