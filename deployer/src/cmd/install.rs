//! Step 1 of `up`: Envoy Gateway and cert-manager from their pinned release manifests
//! (downloaded once into a cache, or read from a local bundle directory for air-gapped
//! clusters), skipped when the cluster already runs them.

use crate::config::Plan;
use crate::errors::Error;
use crate::k8s::apply::{apply_all, FIELD_MANAGER};
use crate::k8s::wait::{self, WaitArgs};
use crate::k8s::{read, split_api_version, Cluster};
use crate::template::Mesh;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One release manifest `up` installs.
#[derive(Debug, Clone)]
pub struct Component {
    pub title: &'static str,
    pub version: String,
    /// The release asset, pinned by version.
    pub url: String,
    /// Its name in a bundle directory and in the cache.
    pub file: String,
    /// Kinds that must be served for the component to count as present.
    pub kinds: &'static [(&'static str, &'static str, &'static str)],
    /// Label selector of its controller Deployment (any namespace): present only if it exists,
    /// so an install interrupted after the CRDs is completed by the next run.
    pub controller: &'static str,
}

pub fn components(p: &Plan) -> Vec<Component> {
    let with_envoy_gateway = p.mesh == Mesh::EnvoyGateway;
    let eg = p.envoy_gateway_version.clone();
    let cm = p.cert_manager_version.clone();
    let mut out = Vec::new();
    if with_envoy_gateway {
        out.push(Component {
            title: "Envoy Gateway",
            url: format!("https://github.com/envoyproxy/gateway/releases/download/{eg}/install.yaml"),
            file: format!("envoy-gateway-{eg}.yaml"),
            version: eg,
            kinds: &[
                ("gateway.networking.k8s.io", "v1", "GatewayClass"),
                ("gateway.networking.k8s.io", "v1", "Gateway"),
                ("gateway.networking.k8s.io", "v1", "HTTPRoute"),
                ("gateway.envoyproxy.io", "v1alpha1", "HTTPRouteFilter"),
                ("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"),
                ("gateway.envoyproxy.io", "v1alpha1", "ClientTrafficPolicy"),
                ("gateway.envoyproxy.io", "v1alpha1", "BackendTrafficPolicy"),
            ],
            controller: "control-plane=envoy-gateway",
        });
    }
    out.push(Component {
        title: "cert-manager",
        url: format!("https://github.com/cert-manager/cert-manager/releases/download/{cm}/cert-manager.yaml"),
        file: format!("cert-manager-{cm}.yaml"),
        version: cm,
        kinds: &[("cert-manager.io", "v1", "Issuer"), ("cert-manager.io", "v1", "Certificate")],
        controller: "app.kubernetes.io/name=cert-manager,app.kubernetes.io/component=controller",
    });
    out
}

/// Where downloaded manifests are kept (the same layout as a `--bundle` directory, so the
/// cache of a connected machine can be copied to an air-gapped one).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ipfs-edge").join("deployer-bundle")
}

/// The manifest's text: from the bundle directory, else the cache, else downloaded into it.
pub async fn manifest(c: &Component, bundle: Option<&Path>) -> Result<String, Error> {
    if let Some(dir) = bundle {
        let p = dir.join(&c.file);
        return std::fs::read_to_string(&p).map_err(|e| {
            Error::Local(format!(
                "cannot read {} {} from the bundle: {}: {e}\n  hint: a bundle directory holds {} (the release asset {})",
                c.title, c.version, p.display(), c.file, c.url
            ))
        });
    }
    let cached = cache_dir().join(&c.file);
    if let Ok(text) = std::fs::read_to_string(&cached) {
        return Ok(text);
    }
    eprintln!("      downloading {} {} from {}", c.title, c.version, c.url);
    let body = download(&c.url).await.map_err(|e| {
        Error::Local(format!(
            "cannot download {} {} from {}: {e}\n  hint: without internet access, put the release asset in a directory as {} and pass --bundle DIR",
            c.title, c.version, c.url, c.file
        ))
    })?;
    let text = String::from_utf8(body).map_err(|_| Error::Local(format!("{} is not text", c.url)))?;
    if parse(&text).map(|d| d.is_empty()).unwrap_or(true) {
        return Err(Error::Local(format!("{} is not a Kubernetes manifest", c.url)));
    }
    // Written beside, then renamed: an interrupted download never leaves half a manifest.
    let dir = cache_dir();
    let tmp = dir.join(format!("{}.partial", c.file));
    std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&tmp, &text))
        .and_then(|_| std::fs::rename(&tmp, &cached))
        .map_err(|e| Error::Local(format!("cannot write the cache {}: {e}", cached.display())))?;
    Ok(text)
}

/// HTTPS GET following redirects (GitHub release assets redirect to their storage host).
async fn download(url: &str) -> Result<Vec<u8>, String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_only()
        .enable_http1()
        .build();
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    let mut url = url.to_string();
    for _ in 0..10 {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let req = http::Request::get(uri)
            .header("user-agent", concat!("ipfs-edge-deployer/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(60), client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        if status.is_redirection() {
            url = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or("redirect without Location")?
                .to_string();
            continue;
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?;
        return Ok(body.to_bytes().to_vec());
    }
    Err("too many redirects".into())
}

pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(de).map_err(|e| e.to_string())?;
        if v.get("kind").is_some() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The release manifest as applied: cert-manager's controller gets `--enable-gateway-api`
/// (the Gateway API HTTP-01 solver needs it; the release manifest leaves it off).
pub fn prepare(c: &Component, mut docs: Vec<Value>) -> Vec<Value> {
    if c.title == "cert-manager" {
        for d in docs.iter_mut().filter(|d| d["kind"] == "Deployment") {
            let labels = &d["metadata"]["labels"];
            if labels["app.kubernetes.io/name"] != "cert-manager" || labels["app.kubernetes.io/component"] != "controller" {
                continue;
            }
            if let Some(Value::Array(containers)) = d.pointer_mut("/spec/template/spec/containers") {
                if let Some(first) = containers.first_mut() {
                    let args = first.as_object_mut().expect("container").entry("args").or_insert_with(|| Value::Array(vec![]));
                    if let Value::Array(a) = args {
                        if !a.iter().any(|x| x.as_str().is_some_and(|s| s.starts_with("--enable-gateway-api"))) {
                            a.push("--enable-gateway-api".into());
                        }
                    }
                }
            }
        }
    }
    // Namespaces and CRDs first: everything else may live in or be one of them.
    docs.sort_by_key(|d| match d["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    });
    docs
}

/// The component's controller Deployments when it runs already (its kinds are served and
/// a controller exists); `None` when it must be installed.
async fn present(cl: &Cluster, c: &Component) -> Result<Option<Vec<Deployment>>, Error> {
    let controllers = read::list::<Deployment>(cl, None, &ListParams::default().labels(c.controller)).await?;
    let served = c.kinds.iter().all(|(g, v, k)| cl.serves(g, v, k).is_some());
    Ok((served && !controllers.is_empty()).then_some(controllers))
}

/// A cert-manager that runs already must have Gateway API support (`cert_manager`).
async fn check_cert_manager(cl: &Cluster, controllers: &[Deployment]) -> Result<(), Error> {
    for d in controllers {
        let config = match super::cert_manager::config_source(d) {
            Some((cm, key)) => read::get::<ConfigMap>(cl, d.metadata.namespace.as_deref(), &cm)
                .await?
                .and_then(|m| m.data?.get(&key).cloned())
                .and_then(|text| serde_yaml_ng::from_str::<Value>(&text).ok()),
            None => None,
        };
        super::cert_manager::gateway_api_support(d, config.as_ref()).map_err(Error::Unsupported)?;
    }
    Ok(())
}

/// Step 1. Everything present is checked before anything is installed, so a cluster that
/// cannot work stops the run untouched. Returns whether anything was installed.
pub async fn ensure(cl: &mut Cluster, p: &Plan, bundle: Option<&Path>, skip_crds: bool, w: &WaitArgs) -> Result<bool, Error> {
    let mut missing = Vec::new();
    for c in components(p) {
        match present(cl, &c).await? {
            Some(controllers) => {
                if c.title == "cert-manager" {
                    check_cert_manager(cl, &controllers).await?;
                }
                eprintln!("      ✓ {} is present (not reinstalled)", c.title);
            }
            None => missing.push(c),
        }
    }
    let installed = !missing.is_empty();
    for c in missing {
        let text = manifest(&c, bundle).await?;
        let docs = prepare(&c, parse(&text).map_err(|e| Error::Local(format!("{} {}: {e}", c.title, c.file)))?);
        install(cl, &c, &docs, skip_crds, w).await?;
    }
    if p.mesh == Mesh::Istio {
        eprintln!("      ✓ --mesh istio: Istio and its Gateway API CRDs are assumed present");
    }
    Ok(installed)
}

/// Who else manages a CRD that exists: `None` when it is ours to apply (absent, or applied
/// by the deployer before, e.g. by an interrupted install). Anyone else's (GKE's managed
/// Gateway API, a Helm or kubectl install) is left alone: force-applying over it would
/// fight that manager's reconciler.
pub fn foreign_crd(live: Option<&CustomResourceDefinition>) -> Option<String> {
    let live = live?;
    let managers: Vec<&str> = live
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    if managers.contains(&FIELD_MANAGER) {
        return None;
    }
    // The API server's own entries (status conditions) say nothing about who manages it.
    let mut who: Vec<String> = managers.iter().filter(|m| **m != "kube-apiserver").map(|m| m.to_string()).collect();
    who.dedup();
    let mut about = if who.is_empty() { "another manager".to_string() } else { who.join(", ") };
    if let Some(v) = live.metadata.annotations.as_ref().and_then(|a| a.get("gateway.networking.k8s.io/bundle-version")) {
        about.push_str(&format!("; bundle-version {v}"));
    }
    let gke = live.metadata.labels.iter().flatten().any(|(k, _)| k.contains("gke.io") || k == "addonmanager.kubernetes.io/mode");
    if gke {
        about.push_str("; managed by the platform (GKE)");
    }
    Some(about)
}

async fn install(cl: &mut Cluster, c: &Component, docs: &[Value], skip_crds: bool, w: &WaitArgs) -> Result<(), Error> {
    let mut groups: Vec<&str> = docs.iter().map(|d| split_api_version(d["apiVersion"].as_str().unwrap_or_default()).0).collect();
    groups.sort();
    groups.dedup();
    let crds: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    let (first, rest): (Vec<&Value>, Vec<&Value>) =
        docs.iter().partition(|d| matches!(d["kind"].as_str(), Some("Namespace" | "CustomResourceDefinition")));
    cl.discover_more(&groups).await?;
    // CRDs someone else manages stay as they are (and all of them with --skip-crds).
    let mut ours = Vec::new();
    let mut left: Vec<(String, String)> = Vec::new();
    for d in first {
        if d["kind"] != "CustomResourceDefinition" {
            ours.push(d);
            continue;
        }
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let live = read::get::<CustomResourceDefinition>(cl, None, name).await?;
        if skip_crds {
            if live.is_none() {
                return Err(Error::CrdMissing {
                    kind: name.into(),
                    api_version: "apiextensions.k8s.io/v1".into(),
                    hint: format!("--skip-crds leaves {}'s CRDs to you, and this one is not in the cluster: install it, or drop --skip-crds", c.title),
                });
            }
            left.push((name.into(), "--skip-crds".into()));
        } else if let Some(who) = foreign_crd(live.as_ref()) {
            left.push((name.into(), who));
        } else {
            ours.push(d);
        }
    }
    if !left.is_empty() {
        let bundled = crds
            .iter()
            .find_map(|d| d["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"].as_str())
            .map(|v| format!(" ({} {} bundles Gateway API {v})", c.title, c.version))
            .unwrap_or_default();
        eprintln!("      ✓ {} CRDs left as they are{bundled}:", left.len());
        for (name, who) in &left {
            eprintln!("        {name}: {who}");
        }
    }
    let pb = wait::spinner(format!("installing {} {}: {} CRDs", c.title, c.version, ours.len()));
    apply_all(cl, &ours).await?;
    pb.finish_and_clear();
    // Custom resources of the component's own CRDs can be applied only once they are served.
    let names: Vec<String> = crds.iter().filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string)).collect();
    wait::established(cl, &names, w).await?;
    cl.rediscover().await?;
    let pb = wait::spinner(format!("installing {} {}: {} objects", c.title, c.version, rest.len()));
    apply_all(cl, &rest).await?;
    pb.finish_and_clear();
    for d in docs.iter().filter(|d| d["kind"] == "Deployment") {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        wait::deployment(cl, ns, name, w).await?;
    }
    eprintln!("      ✓ {} {} installed", c.title, c.version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_release_urls() {
        let c = components(&crate::config::Settings::default().plan().unwrap());
        assert_eq!(c[0].url, "https://github.com/envoyproxy/gateway/releases/download/v1.9.0/install.yaml");
        assert_eq!(c[1].url, "https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml");
        assert_eq!((c[0].file.as_str(), c[1].file.as_str()), ("envoy-gateway-v1.9.0.yaml", "cert-manager-v1.21.1.yaml"));
        let istio = crate::config::Settings { mesh: Some(Mesh::Istio), ..Default::default() };
        assert_eq!(components(&istio.plan().unwrap()).len(), 1);
    }

    #[test]
    fn crds_of_another_manager_are_left_alone() {
        let crd = |managers: &[&str], annotations: serde_json::Value, labels: serde_json::Value| -> CustomResourceDefinition {
            let mf: Vec<_> = managers.iter().map(|m| serde_json::json!({"manager": m, "operation": "Apply"})).collect();
            serde_json::from_value(serde_json::json!({"metadata": {"name": "gateways.gateway.networking.k8s.io",
                "managedFields": mf, "annotations": annotations, "labels": labels},
                "spec": {"group": "gateway.networking.k8s.io", "names": {"kind": "Gateway", "plural": "gateways"}, "scope": "Namespaced", "versions": []}}))
            .unwrap()
        };
        assert_eq!(foreign_crd(None), None);
        assert_eq!(foreign_crd(Some(&crd(&[FIELD_MANAGER, "kube-apiserver"], serde_json::json!({}), serde_json::json!({})))), None);
        let gke = crd(&["addon-manager"], serde_json::json!({"gateway.networking.k8s.io/bundle-version": "v1.2.1"}),
            serde_json::json!({"addonmanager.kubernetes.io/mode": "Reconcile"}));
        let who = foreign_crd(Some(&gke)).unwrap();
        assert!(who.contains("addon-manager") && who.contains("v1.2.1") && who.contains("GKE"), "{who}");
        assert!(foreign_crd(Some(&crd(&["kubectl-client-side-apply"], serde_json::json!({}), serde_json::json!({})))).is_some());
    }

    #[test]
    fn cert_manager_gets_gateway_api_support_once() {
        let c = &components(&crate::config::Settings { mesh: Some(Mesh::Istio), ..Default::default() }.plan().unwrap())[0];
        let text = "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: cert-manager, namespace: cert-manager, labels: {app.kubernetes.io/name: cert-manager, app.kubernetes.io/component: controller}}\nspec: {template: {spec: {containers: [{name: c, args: [--v=2]}]}}}\n---\nkind: Deployment\napiVersion: apps/v1\nmetadata: {name: webhook, labels: {app.kubernetes.io/name: webhook}}\nspec: {template: {spec: {containers: [{name: w}]}}}\n---\nkind: CustomResourceDefinition\napiVersion: apiextensions.k8s.io/v1\nmetadata: {name: x}\n";
        let docs = prepare(c, parse(text).unwrap());
        assert_eq!(docs[0]["kind"], "CustomResourceDefinition");
        let ctl = docs.iter().find(|d| d["metadata"]["name"] == "cert-manager").unwrap();
        assert_eq!(ctl["spec"]["template"]["spec"]["containers"][0]["args"], serde_json::json!(["--v=2", "--enable-gateway-api"]));
        let again = prepare(c, docs.clone());
        let ctl2 = again.iter().find(|d| d["metadata"]["name"] == "cert-manager").unwrap();
        assert_eq!(ctl2, ctl);
        let wh = docs.iter().find(|d| d["metadata"]["name"] == "webhook").unwrap();
        assert!(wh["spec"]["template"]["spec"]["containers"][0].get("args").is_none());
    }
}
