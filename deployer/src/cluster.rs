//! The connection to the cluster: kubeconfig/context, discovery, and API errors turned into
//! errors a user can act on.

use crate::errors::Error;
use crate::render::Object;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;
use std::path::PathBuf;

/// API groups the objects use: discovery asks only for these (fewer requests than a full
/// discovery, and it works on servers without aggregated discovery). Step 1 discovers the
/// release manifests' groups itself.
pub const GROUPS: &[&str] = &[
    "",
    "apps",
    "policy",
    "networking.k8s.io",
    "gateway.networking.k8s.io",
    "gateway.envoyproxy.io",
    "cert-manager.io",
    "extensions.istio.io",
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
        let unreachable = |reason: String| Error::Unreachable {
            server: server.clone(),
            context: context.clone(),
            reason,
        };
        let discovery = Discovery::new(client.clone())
            .filter(GROUPS)
            .run()
            .await
            .map_err(|e| match api_status(&e) {
                Some((403, msg)) => Error::Forbidden {
                    verb: "list".into(),
                    resource: "API groups (discovery)".into(),
                    ns: String::new(),
                    message: msg,
                },
                Some((401, msg)) => Error::Kubeconfig(format!("the server rejected the credentials: {msg}")),
                _ => unreachable(e.to_string()),
            })?;
        Ok(Cluster { client, discovery, server, context })
    }

    /// Discovery again, after step 1 installed CRDs.
    pub async fn rediscover(&mut self) -> Result<(), Error> {
        self.discovery = Discovery::new(self.client.clone()).filter(GROUPS).run().await.map_err(|e| Error::Unreachable {
            server: self.server.clone(),
            context: self.context.clone(),
            reason: e.to_string(),
        })?;
        Ok(())
    }

    /// The API of an object's kind, or what to install when the cluster does not serve it.
    pub fn resolve(&self, o: &Object) -> Result<(ApiResource, ApiCapabilities), Error> {
        let (group, version) = split_api_version(o.api_version());
        let gvk = GroupVersionKind::gvk(group, version, o.kind());
        if let Some(found) = self.discovery.resolve_gvk(&gvk) {
            return Ok(found);
        }
        // Clusters before 1.21 serve PodDisruptionBudget only as policy/v1beta1, with the same
        // fields for what the template sets (maxUnavailable, selector).
        if o.kind() == "PodDisruptionBudget" {
            if let Some(found) = self.discovery.resolve_gvk(&GroupVersionKind::gvk("policy", "v1beta1", o.kind())) {
                return Ok(found);
            }
        }
        Err(Error::CrdMissing {
            kind: o.kind().to_string(),
            api_version: o.api_version().to_string(),
            hint: install_hint(group),
        })
    }

    pub fn api(&self, ar: &ApiResource, caps: &ApiCapabilities, namespace: Option<&str>) -> Api<DynamicObject> {
        match (caps.scope.clone(), namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }
}

pub fn split_api_version(av: &str) -> (&str, &str) {
    av.split_once('/').unwrap_or(("", av))
}

fn install_hint(group: &str) -> String {
    let v = crate::values::Values::defaults();
    match group {
        "gateway.networking.k8s.io" | "gateway.envoyproxy.io" => format!(
            "install Envoy Gateway {} (it brings the Gateway API CRDs), or use --mesh istio on a cluster with Istio",
            v.req("ENVOY_GATEWAY_VERSION")
        ),
        "cert-manager.io" => format!(
            "install cert-manager {} with its Gateway API support enabled (--enable-gateway-api)",
            v.req("CERT_MANAGER_VERSION")
        ),
        "extensions.istio.io" => format!("install Istio {} (--mesh istio assumes it is present)", v.req("ISTIO_VERSION")),
        _ => "this Kubernetes version is too old for the manifests".into(),
    }
}

/// The HTTP status code and message of an API error, if it is one.
pub fn api_status(e: &kube::Error) -> Option<(u16, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.message.clone())),
        _ => None,
    }
}

/// Maps a failed call on `resource` to an actionable error.
pub fn call_error(cl: &Cluster, e: kube::Error, verb: &str, ar: &ApiResource, ns: Option<&str>, what: &str) -> Error {
    let resource = if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) };
    let ns = ns.map(|n| format!(" in namespace {n}")).unwrap_or_default();
    match api_status(&e) {
        Some((403, message)) => Error::Forbidden { verb: verb.into(), resource, ns, message },
        Some((401, message)) => Error::Kubeconfig(format!("the server rejected the credentials: {message}")),
        Some((_, message)) => Error::Rejected { what: what.into(), message },
        None => Error::Unreachable { server: cl.server.clone(), context: cl.context.clone(), reason: e.to_string() },
    }
}
