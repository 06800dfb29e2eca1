//! Step 1 of `up`: Envoy Gateway and cert-manager from their pinned release manifests
//! (downloaded once into a cache, or read from a local bundle directory for air-gapped
//! clusters), skipped when the cluster already runs them.

use crate::config::Plan;
use crate::errors::Error;
use crate::k8s::apply::apply_all;
use crate::k8s::wait::{self, WaitArgs};
use crate::k8s::{read, split_api_version, Cluster};
use crate::template::Mesh;
use k8s_openapi::api::apps::v1::Deployment;
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

/// Whether the component runs already: its kinds are served and its controller exists.
async fn present(cl: &Cluster, c: &Component) -> Result<bool, Error> {
    let controllers = read::list::<Deployment>(cl, None, &ListParams::default().labels(c.controller)).await?;
    let served = c.kinds.iter().all(|(g, v, k)| cl.serves(g, v, k).is_some());
    Ok(served && !controllers.is_empty())
}

/// Step 1. Returns whether anything was installed (discovery is then refreshed).
pub async fn ensure(cl: &mut Cluster, p: &Plan, bundle: Option<&Path>, w: &WaitArgs) -> Result<bool, Error> {
    let mut installed = false;
    for c in components(p) {
        if present(cl, &c).await? {
            eprintln!("      ✓ {} is present (not reinstalled)", c.title);
            continue;
        }
        let text = manifest(&c, bundle).await?;
        let docs = prepare(&c, parse(&text).map_err(|e| Error::Local(format!("{} {}: {e}", c.title, c.file)))?);
        install(cl, &c, &docs, w).await?;
        installed = true;
    }
    if p.mesh == Mesh::Istio {
        eprintln!("      ✓ --mesh istio: Istio and its Gateway API CRDs are assumed present");
    }
    Ok(installed)
}

async fn install(cl: &mut Cluster, c: &Component, docs: &[Value], w: &WaitArgs) -> Result<(), Error> {
    let mut groups: Vec<&str> = docs.iter().map(|d| split_api_version(d["apiVersion"].as_str().unwrap_or_default()).0).collect();
    groups.sort();
    groups.dedup();
    let crds: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    let (first, rest): (Vec<&Value>, Vec<&Value>) =
        docs.iter().partition(|d| matches!(d["kind"].as_str(), Some("Namespace" | "CustomResourceDefinition")));
    let pb = wait::spinner(format!("installing {} {}: {} CRDs", c.title, c.version, crds.len()));
    cl.discover_more(&groups).await?;
    apply_all(cl, &first).await?;
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
