//! What to deploy: flags over a config file over `values.env` defaults, checked before any
//! cluster is touched.

use crate::errors::Error;
use crate::template::Mesh;
use crate::values::Values;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acme {
    Staging,
    Production,
}

impl Acme {
    pub fn server(self) -> &'static str {
        match self {
            Acme::Staging => "https://acme-staging-v02.api.letsencrypt.org/directory",
            Acme::Production => "https://acme-v02.api.letsencrypt.org/directory",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
pub enum SwarmServiceType {
    LoadBalancer,
    NodePort,
}

/// Settings shared by every subcommand that renders; each is also a config-file key
/// (kebab-case). Unset ones fall back to the file, then to values.env.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// YAML file with any of these settings as keys (e.g. `domain: ipfs.example.org`);
    /// flags win over it.
    #[arg(long, short = 'f', value_name = "FILE", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Name prefix of every object (StatefulSet, Services, Gateway...).
    #[arg(long, global = true)]
    pub name: Option<String>,
    /// Namespace everything goes in.
    #[arg(long, short = 'n', global = true)]
    pub namespace: Option<String>,
    /// Public hostname of the gateway, RPC and REST APIs (DNS must point at the Gateway).
    #[arg(long, global = true)]
    pub domain: Option<String>,
    /// Contact address for the ACME account (Let's Encrypt expiry notices).
    #[arg(long, global = true, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// Let's Encrypt `staging` (untrusted certificates, generous limits: try here first) or
    /// `production`.
    #[arg(long, global = true, value_enum)]
    pub acme: Option<Acme>,
    /// Cluster peers (pods). Default: what the cluster runs now, else values.env.
    #[arg(long, global = true)]
    pub replicas: Option<u32>,
    /// StorageClass of the volumes (default: the cluster's default class).
    #[arg(long, global = true)]
    pub storage_class: Option<String>,
    /// Size of each Kubo volume (blocks), e.g. 500Gi.
    #[arg(long, global = true)]
    pub kubo_storage_size: Option<String>,
    /// Size of each ipfs-cluster volume (pinset, peerstore).
    #[arg(long, global = true)]
    pub cluster_storage_size: Option<String>,
    /// Kubo image (pinned by default).
    #[arg(long, global = true)]
    pub kubo_image: Option<String>,
    /// ipfs-cluster image (v1.1.6 by default).
    #[arg(long, global = true)]
    pub cluster_image: Option<String>,
    /// Proxy that runs the filters: Envoy Gateway (installed by `up`) or Istio (must be
    /// present already).
    #[arg(long, global = true, value_enum)]
    pub mesh: Option<Mesh>,
    /// How each pod's swarm port (4001 TCP+UDP) is exposed.
    #[arg(long, global = true, value_enum)]
    pub swarm_service_type: Option<SwarmServiceType>,
    /// Directory with add_response.wasm, health.wasm and router.wasm.
    /// Default: target/wasm32-wasip1/release (build them with
    /// `cargo build --release --target wasm32-wasip1`).
    #[arg(long, global = true, value_name = "DIR")]
    pub filters_dir: Option<PathBuf>,
    /// Requests per minute per client address on the RPC and REST routes.
    #[arg(long, global = true)]
    pub rate_limit_per_minute: Option<u32>,
}

impl Settings {
    /// Flags over the config file (`--config`).
    pub fn merged(&self) -> Result<Settings, Error> {
        let Some(path) = &self.config else { return Ok(self.clone()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read config file {}: {e}", path.display())))?;
        let file: Settings = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::Usage(format!("config file {}: {e}", path.display())))?;
        Ok(Settings {
            config: self.config.clone(),
            name: self.name.clone().or(file.name),
            namespace: self.namespace.clone().or(file.namespace),
            domain: self.domain.clone().or(file.domain),
            acme_email: self.acme_email.clone().or(file.acme_email),
            acme: self.acme.or(file.acme),
            replicas: self.replicas.or(file.replicas),
            storage_class: self.storage_class.clone().or(file.storage_class),
            kubo_storage_size: self.kubo_storage_size.clone().or(file.kubo_storage_size),
            cluster_storage_size: self.cluster_storage_size.clone().or(file.cluster_storage_size),
            kubo_image: self.kubo_image.clone().or(file.kubo_image),
            cluster_image: self.cluster_image.clone().or(file.cluster_image),
            mesh: self.mesh.or(file.mesh),
            swarm_service_type: self.swarm_service_type.or(file.swarm_service_type),
            filters_dir: self.filters_dir.clone().or(file.filters_dir),
            rate_limit_per_minute: self.rate_limit_per_minute.or(file.rate_limit_per_minute),
        })
    }

    /// The values the templates see, and the mesh; checks each value's shape.
    pub fn resolve(&self) -> Result<(Values, Mesh), Error> {
        let mut v = Values::defaults();
        let mesh = self.mesh.unwrap_or(Mesh::EnvoyGateway);
        let mut set = |key: &str, val: Option<String>| {
            if let Some(val) = val {
                v.set(key, val);
            }
        };
        set("NAME", self.name.clone());
        set("NAMESPACE", self.namespace.clone());
        set("DOMAIN", self.domain.clone());
        set("ACME_EMAIL", self.acme_email.clone());
        set("ACME_SERVER", self.acme.map(|a| a.server().to_string()));
        set("REPLICAS", self.replicas.map(|r| r.to_string()));
        set("STORAGE_CLASS", self.storage_class.clone());
        set("KUBO_STORAGE_SIZE", self.kubo_storage_size.clone());
        set("CLUSTER_STORAGE_SIZE", self.cluster_storage_size.clone());
        set("KUBO_IMAGE", self.kubo_image.clone());
        set("CLUSTER_IMAGE", self.cluster_image.clone());
        set(
            "SWARM_SERVICE_TYPE",
            self.swarm_service_type.map(|t| format!("{t:?}")),
        );
        set("RATE_LIMIT_PER_MINUTE", self.rate_limit_per_minute.map(|r| r.to_string()));
        if mesh == Mesh::Istio {
            // Istio installs and owns this GatewayClass.
            v.set("GATEWAY_CLASS", "istio");
        }
        check(&v)?;
        Ok((v, mesh))
    }

    pub fn filters_dir(&self) -> PathBuf {
        self.filters_dir
            .clone()
            .unwrap_or_else(|| Path::new("target/wasm32-wasip1/release").to_path_buf())
    }
}

fn check(v: &Values) -> Result<(), Error> {
    let bad = |key: &str, why: &str| Err(Error::Usage(format!("{key}: {:?} {why}", v.req(key))));
    for key in ["NAME", "NAMESPACE"] {
        if !is_dns_label(v.req(key)) || v.req(key).len() > 40 {
            return bad(key, "must be a DNS label of at most 40 characters (a-z, 0-9, '-')");
        }
    }
    let domain = v.req("DOMAIN");
    if domain.is_empty() || !domain.split('.').all(is_dns_label) || !domain.contains('.') {
        return bad("DOMAIN", "must be a fully qualified hostname like ipfs.example.org");
    }
    let email = v.req("ACME_EMAIL");
    if !email.contains('@') || email.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
        return bad("ACME_EMAIL", "must be an e-mail address");
    }
    match v.req("REPLICAS").parse::<u32>() {
        Ok(n) if (1..=64).contains(&n) => {}
        _ => return bad("REPLICAS", "must be a number from 1 to 64"),
    }
    for key in ["KUBO_STORAGE_SIZE", "CLUSTER_STORAGE_SIZE"] {
        if !is_quantity(v.req(key)) {
            return bad(key, "must be a Kubernetes quantity like 100Gi");
        }
    }
    let class = v.req("STORAGE_CLASS");
    if !class.is_empty() && !class.split('.').all(is_dns_label) {
        return bad("STORAGE_CLASS", "must be a StorageClass name");
    }
    for key in ["KUBO_IMAGE", "CLUSTER_IMAGE"] {
        let image = v.req(key);
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c == '"') {
            return bad(key, "must be an image reference");
        }
    }
    Ok(())
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_quantity(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["", "Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P"].contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "domain: file.example.org\nreplicas: 5\nmesh: istio\n").unwrap();
        let s = Settings {
            config: Some(file),
            domain: Some("flag.example.org".into()),
            ..Default::default()
        };
        let (v, mesh) = s.merged().unwrap().resolve().unwrap();
        assert_eq!(v.req("DOMAIN"), "flag.example.org");
        assert_eq!(v.req("REPLICAS"), "5");
        assert_eq!(mesh, Mesh::Istio);
        assert_eq!(v.req("GATEWAY_CLASS"), "istio");
        assert_eq!(v.req("NAME"), "ipfs-cluster");
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "domian: x.example.org\n").unwrap();
        let s = Settings { config: Some(file), ..Default::default() };
        assert!(s.merged().unwrap_err().to_string().contains("domian"));
        for s in [
            Settings { domain: Some("not a host".into()), ..Default::default() },
            Settings { namespace: Some("Upper".into()), ..Default::default() },
            Settings { replicas: Some(0), ..Default::default() },
            Settings { kubo_storage_size: Some("lots".into()), ..Default::default() },
            Settings { acme_email: Some("x\"@y".into()), ..Default::default() },
        ] {
            assert!(matches!(s.resolve(), Err(Error::Usage(_))), "{s:?}");
        }
    }

    #[test]
    fn acme_choice_sets_the_server() {
        let s = Settings { acme: Some(Acme::Production), ..Default::default() };
        assert_eq!(s.resolve().unwrap().0.req("ACME_SERVER"), Acme::Production.server());
        assert_eq!(Values::defaults().req("ACME_SERVER"), Acme::Staging.server());
    }
}
