//! The Kubernetes layer: the connection (kubeconfig, context, discovery), the one
//! server-side apply path (`apply`), reads (`read`), waits (`wait`), and the one mapping of
//! `kube::Error` to the deployer's errors (`error`). Nothing here knows the deployer's
//! commands or objects; the commands above call down into it, never the other way.
//!
//! Named `k8s` rather than `kube` so that `kube::` always means the kube crate.

pub mod apply;
pub mod error;
pub mod noop;
pub mod read;
pub mod wait;

use crate::errors::Error;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;
use serde_json::Value;
use std::path::PathBuf;

/// API groups the objects use: discovery asks only for these (fewer requests than a full
/// discovery, and it works on servers without aggregated discovery). Step 1 adds the
/// release manifests' groups with `discover_more`.
pub const GROUPS: &[&str] = &[
    "",
    "apps",
    "policy",
    "networking.k8s.io",
    "gateway.networking.k8s.io",
    "gateway.envoyproxy.io",
    "cert-manager.io",
    "extensions.istio.io",
    // The Prometheus Operator's PodMonitor, applied only where it is served.
    "monitoring.coreos.com",
];

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Target {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
}

pub struct Cluster {
    pub client: Client,
    pub discovery: Discovery,
    /// Groups discovered (GROUPS and any added by `discover_more`).
    groups: Vec<String>,
    pub server: String,
    pub context: String,
}

impl Cluster {
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        let options = KubeConfigOptions { context: target.context.clone(), ..Default::default() };
        let kubeconfig = match &target.kubeconfig {
            Some(p) => Kubeconfig::read_from(p).map_err(|e| Error::Kubeconfig(format!("{}: {e}", p.display())))?,
            None => Kubeconfig::read().map_err(|e| Error::Kubeconfig(e.to_string()))?,
        };
        let context = target
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| Error::Kubeconfig("no current context".into()))?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            return Err(Error::Kubeconfig(format!("context {context:?} is not in the kubeconfig")));
        }
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let mut cl = Cluster {
            client: client.clone(),
            discovery: Discovery::new(client),
            groups: GROUPS.iter().map(|g| g.to_string()).collect(),
            server,
            context,
        };
        cl.rediscover().await?;
        Ok(cl)
    }

    /// Discovery again (after step 1 installed CRDs).
    pub async fn rediscover(&mut self) -> Result<(), Error> {
        let groups: Vec<&str> = self.groups.iter().map(String::as_str).collect();
        // A group whose CRDs are being created (by us or anyone) is listed before its
        // version is served, which answers 404 for a moment.
        let client = self.client.clone();
        let found = error::retrying_also(
            || Discovery::new(client.clone()).filter(&groups).run(),
            |e| error::is_not_found(e).then_some(std::time::Duration::from_secs(20)),
        )
        .await;
        self.discovery = found.map_err(|e| self.error(e, &error::Call::discovery()))?;
        Ok(())
    }

    /// Adds API groups to discovery (a release manifest's own) and discovers again.
    pub async fn discover_more(&mut self, groups: &[&str]) -> Result<(), Error> {
        for g in groups {
            if !self.groups.iter().any(|x| x == g) {
                self.groups.push(g.to_string());
            }
        }
        self.rediscover().await
    }

    /// The API of an object's kind, or what to install when the cluster does not serve it.
    pub fn resolve(&self, o: &Value) -> Result<(ApiResource, ApiCapabilities), Error> {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let (group, version) = split_api_version(api_version);
        if let Some(found) = self.discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind)) {
            return Ok(found);
        }
        Err(Error::CrdMissing { kind: kind.to_string(), api_version: api_version.to_string(), hint: install_hint(group) })
    }

    /// Whether the cluster serves a kind.
    pub fn serves(&self, group: &str, version: &str, kind: &str) -> Option<ApiResource> {
        self.discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind)).map(|(ar, _)| ar)
    }

    pub fn api(&self, ar: &ApiResource, caps: &ApiCapabilities, namespace: Option<&str>) -> Api<DynamicObject> {
        match (caps.scope.clone(), namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }

    /// The one mapping of a failed call to an error a user can act on (`error::map`).
    pub fn error(&self, e: kube::Error, call: &error::Call) -> Error {
        error::map(&self.server, &self.context, e, call)
    }
}

pub fn split_api_version(av: &str) -> (&str, &str) {
    av.split_once('/').unwrap_or(("", av))
}

fn install_hint(group: &str) -> String {
    let d = crate::values::Values::defaults();
    let v = |key: &str| d.get(key).unwrap_or("(see values.env)").to_string();
    match group {
        "gateway.networking.k8s.io" | "gateway.envoyproxy.io" => format!(
            "install Envoy Gateway {} (it brings the Gateway API CRDs), or use --mesh istio on a cluster with Istio",
            v("ENVOY_GATEWAY_VERSION")
        ),
        "cert-manager.io" => format!(
            "install cert-manager {} with its Gateway API support enabled (--enable-gateway-api)",
            v("CERT_MANAGER_VERSION")
        ),
        "extensions.istio.io" => format!("install Istio {} (--mesh istio assumes it is present)", v("ISTIO_VERSION")),
        _ => "this Kubernetes version is too old for the manifests".into(),
    }
}

/// `Kind/name` of an object, for messages.
pub fn display(o: &Value) -> String {
    format!("{}/{}", o["kind"].as_str().unwrap_or_default(), o["metadata"]["name"].as_str().unwrap_or_default())
}
