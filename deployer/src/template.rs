//! The templates of `manifests/kubernetes/`, embedded, and `${KEY}` substitution.
//!
//! Only `${UPPER_SNAKE}` is a placeholder, so the shell scripts inside the StatefulSet keep
//! their `$var` and `${var#x}` (as `envsubst` with an explicit variable list does).

use crate::values::{is_key, Values};

/// How often a template is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Once.
    Once,
    /// Once per pod ordinal (`ORDINAL`).
    PerPeer,
    /// Once per filter (`FILTER`, `FILTER_DNS`, `FILTER_BASE64`).
    PerFilter,
}

/// Which mesh a template belongs to (`None`: both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mesh {
    EnvoyGateway,
    Istio,
}

impl Mesh {
    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::EnvoyGateway => "envoy-gateway",
            Mesh::Istio => "istio",
        }
    }
}

/// The step of `deployer up` that applies a template's objects (the numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Step {
    /// 2: namespace, cluster secret, peer identities.
    Identity = 2,
    /// 3: StatefulSet, headless and API Services, PodDisruptionBudget.
    Cluster = 3,
    /// 4: one swarm Service per pod.
    Swarm = 4,
    /// 5: Gateway, routes, Issuer, Certificate.
    Edge = 5,
    /// 6: the filters, their server, their attachment and traffic policies.
    Filters = 6,
}

pub struct Template {
    pub step: Step,
    pub path: &'static str,
    pub text: &'static str,
    pub scope: Scope,
    pub mesh: Option<Mesh>,
    /// Applied only where the cluster serves the kind (the Prometheus Operator's PodMonitor:
    /// an add-on some clusters have, which `up` never installs).
    pub if_served: bool,
}

macro_rules! tpl {
    ($step:ident, $path:literal, $scope:expr, $mesh:expr) => {
        tpl!($step, $path, $scope, $mesh, false)
    };
    ($step:ident, $path:literal, $scope:expr, $mesh:expr, $if_served:expr) => {
        Template {
            step: Step::$step,
            path: $path,
            text: include_str!(concat!("../../manifests/kubernetes/", $path)),
            scope: $scope,
            mesh: $mesh,
            if_served: $if_served,
        }
    };
}

/// Every template, in apply order (README of manifests/kubernetes lists the same order).
pub const TEMPLATES: &[Template] = &[
    tpl!(Identity, "base/namespace.yaml", Scope::Once, None),
    tpl!(Identity, "base/secrets.yaml", Scope::Once, None),
    tpl!(Cluster, "base/announce.yaml", Scope::Once, None),
    tpl!(Cluster, "base/services.yaml", Scope::Once, None),
    tpl!(Cluster, "edge/network-policy.yaml", Scope::Once, None),
    tpl!(Cluster, "base/statefulset.yaml", Scope::Once, None),
    tpl!(Cluster, "base/pdb.yaml", Scope::Once, None),
    tpl!(Swarm, "per-peer/swarm-service.yaml", Scope::PerPeer, None),
    tpl!(Edge, "envoy-gateway/envoy-proxy.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Edge, "envoy-gateway/gatewayclass.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Edge, "envoy-gateway/client-traffic-policy.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Edge, "istio/client-mark.yaml", Scope::Once, Some(Mesh::Istio)),
    tpl!(Edge, "edge/gateway.yaml", Scope::Once, None),
    tpl!(Edge, "edge/routes.yaml", Scope::Once, None),
    tpl!(Edge, "envoy-gateway/native-reads.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Edge, "envoy-gateway/native-health.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Edge, "edge/certificate.yaml", Scope::Once, None),
    tpl!(Edge, "monitoring/pod-monitor-envoy-gateway.yaml", Scope::Once, Some(Mesh::EnvoyGateway), true),
    tpl!(Edge, "monitoring/pod-monitor-istio.yaml", Scope::Once, Some(Mesh::Istio), true),
    tpl!(Filters, "per-filter/wasm-configmap.yaml", Scope::PerFilter, None),
    tpl!(Filters, "edge/filter-server.yaml", Scope::Once, None),
    tpl!(Filters, "envoy-gateway/extension-policy.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Filters, "envoy-gateway/traffic-policies.yaml", Scope::Once, Some(Mesh::EnvoyGateway)),
    tpl!(Filters, "istio/wasm-plugins.yaml", Scope::Once, Some(Mesh::Istio)),
];

/// The placeholders a template uses, in order of first use.
#[cfg(test)]
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        if let Some(end) = after.find('}') {
            let key = &after[..end];
            if is_key(key) && !out.iter().any(|k| k == key) {
                out.push(key.to_string());
            }
        }
        rest = after;
    }
    out
}

/// Replaces every `${KEY}`; a key without a value is an error naming the template.
pub fn substitute(path: &str, text: &str, values: &Values) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}').map(|end| (&after[..end], end)) {
            Some((key, end)) if is_key(key) => {
                let value = values
                    .get(key)
                    .ok_or_else(|| format!("{path}: no value for ${{{key}}}"))?;
                out.push_str(value);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_only_upper_keys() {
        let v = Values::parse("NAME=x\n").unwrap();
        let s = substitute("t", "a ${NAME} $var ${var#,} ${NAME}", &v).unwrap();
        assert_eq!(s, "a x $var ${var#,} x");
        assert!(substitute("t", "${MISSING}", &v).unwrap_err().contains("MISSING"));
    }

    #[test]
    fn every_placeholder_has_a_default_or_a_generator() {
        let values = Values::defaults();
        let generated = ["ORDINAL", "FILTER", "FILTER_DNS", "FILTER_BASE64"];
        for t in TEMPLATES {
            for key in placeholders(t.text) {
                assert!(
                    values.get(&key).is_some() || generated.contains(&key.as_str()),
                    "{}: ${{{key}}} is in no values.env line",
                    t.path
                );
            }
        }
    }

    #[test]
    fn every_template_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/kubernetes");
        for sub in ["base", "per-peer", "per-filter", "edge", "envoy-gateway", "istio", "monitoring"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
                assert!(TEMPLATES.iter().any(|t| t.path == name), "{name} is not in TEMPLATES");
            }
        }
    }
}
