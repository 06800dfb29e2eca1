//! What to deploy: flags over a config file over `values.env` defaults, checked before any
//! cluster is touched.

use crate::errors::Error;
use crate::template::Mesh;
use crate::values::Values;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
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

/// An ACME directory URL for `--acme-server`: `https://` (cert-manager's ACME client speaks
/// TLS to the directory), a host, and nothing that could leave the Issuer's YAML string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct AcmeServer(String);

impl AcmeServer {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for AcmeServer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix("https://").ok_or_else(|| format!("{s:?} must be an https:// URL (an ACME directory)"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) {
            return Err(format!("{s:?} has no valid host"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\') {
            return Err(format!("{s:?} must not contain spaces, quotes or backslashes"));
        }
        Ok(AcmeServer(s.to_string()))
    }
}

impl TryFrom<String> for AcmeServer {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<AcmeServer> for String {
    fn from(a: AcmeServer) -> String {
        a.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
pub enum SwarmServiceType {
    LoadBalancer,
    NodePort,
}

/// Settings shared by every subcommand that renders; each is also a config-file key
/// (kebab-case). Unset ones fall back to the file, then to values.env.
#[derive(Debug, Clone, Default, clap::Args, Deserialize, Serialize)]
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
    /// Any other ACME directory URL instead (a private CA, a test server such as Pebble);
    /// excludes `--acme`. Default: values.env's ACME_SERVER (Let's Encrypt staging).
    #[arg(long, global = true, value_name = "URL", conflicts_with = "acme")]
    pub acme_server: Option<AcmeServer>,
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
    /// How each pod's swarm port (4001, a TCP and a UDP Service per pod) is exposed.
    /// NodePort announces the node's ExternalIP with the Service's node port.
    #[arg(long, global = true, value_enum)]
    pub swarm_service_type: Option<SwarmServiceType>,
    /// A reserved static IP all swarm Services share (LoadBalancer only): pod i is reached
    /// on port 4001 + i. Default: an address per Service.
    #[arg(long, global = true, value_name = "IP")]
    pub swarm_ip: Option<std::net::IpAddr>,
    /// Directory with add_response.wasm, health.wasm and router.wasm.
    /// Default: target/wasm32-wasip1/release (build them with
    /// `cargo build --release --target wasm32-wasip1`).
    #[arg(long, global = true, value_name = "DIR")]
    pub filters_dir: Option<PathBuf>,
    /// Requests per minute per client address on the RPC and REST routes.
    #[arg(long, global = true)]
    pub rate_limit_per_minute: Option<u32>,
    /// The router filter's configuration, a JSON file (credentials, preset, allowlist:
    /// filters/router/README.md), checked with the filter's own rules. In the config file
    /// also as `router:` with the object itself. Unset: what the cluster runs is kept.
    #[arg(long, global = true, value_name = "FILE")]
    pub router_config: Option<PathBuf>,
    /// Config file only: the router filter's configuration as an object.
    #[arg(skip)]
    pub router: Option<Value>,
    /// The health filter's configuration, a JSON file (paths, who is answered, active
    /// mode: filters/health/README.md), checked with the filter's own rules. Active mode
    /// without `checks` gets the default checks aimed at Envoy Gateway's clusters. In the
    /// config file also as `health:`. Unset: values.env's (passive, on `/`).
    #[arg(long, global = true, value_name = "FILE")]
    pub health_config: Option<PathBuf>,
    /// Config file only: the health filter's configuration as an object.
    #[arg(skip)]
    pub health: Option<Value>,
}

impl Settings {
    /// Flags over the config file (`--config`): each setting is listed once, in the struct;
    /// the merge goes through the settings' serde form.
    pub fn merged(&self) -> Result<Settings, Error> {
        let Some(path) = &self.config else { return Ok(self.clone()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read config file {}: {e}", path.display())))?;
        let file: Settings = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::Usage(format!("config file {}: {e}", path.display())))?;
        let (Value::Object(mut merged), Value::Object(flags)) = (to_json(&file)?, to_json(self)?) else {
            unreachable!("settings serialize as a map")
        };
        merged.extend(flags.into_iter().filter(|(_, v)| !v.is_null()));
        let mut out: Settings =
            serde_json::from_value(Value::Object(merged)).map_err(|e| Error::Usage(format!("config file {}: {e}", path.display())))?;
        out.config = self.config.clone();
        Ok(out)
    }

    /// The typed plan: every setting checked, defaults from values.env filled in.
    pub fn plan(&self) -> Result<Plan, Error> {
        let d = Values::defaults();
        let mesh = self.mesh.unwrap_or(Mesh::EnvoyGateway);
        let or = |v: &Option<String>, key: &str| -> Result<String, Error> {
            Ok(match v {
                Some(v) => v.clone(),
                None => d.need(key)?.to_string(),
            })
        };
        let default_replicas = port_like(&d, "REPLICAS")?;
        let plan = Plan {
            name: or(&self.name, "NAME")?,
            namespace: or(&self.namespace, "NAMESPACE")?,
            domain: or(&self.domain, "DOMAIN")?,
            acme_email: or(&self.acme_email, "ACME_EMAIL")?,
            acme_server: match (&self.acme_server, self.acme) {
                (Some(url), _) => url.as_str().to_string(),
                (None, Some(a)) => a.server().to_string(),
                (None, None) => d.need("ACME_SERVER")?.to_string(),
            },
            replicas: self.replicas.unwrap_or(default_replicas),
            replicas_given: self.replicas.is_some(),
            storage_class: or(&self.storage_class, "STORAGE_CLASS")?,
            kubo_storage_size: or(&self.kubo_storage_size, "KUBO_STORAGE_SIZE")?,
            cluster_storage_size: or(&self.cluster_storage_size, "CLUSTER_STORAGE_SIZE")?,
            kubo_image: or(&self.kubo_image, "KUBO_IMAGE")?,
            cluster_image: or(&self.cluster_image, "CLUSTER_IMAGE")?,
            mesh,
            // Istio installs and owns its GatewayClass `istio`.
            gateway_class: if mesh == Mesh::Istio { "istio".into() } else { d.need("GATEWAY_CLASS")?.to_string() },
            swarm_service_type: match self.swarm_service_type {
                Some(t) => t,
                None => match d.need("SWARM_SERVICE_TYPE")? {
                    "NodePort" => SwarmServiceType::NodePort,
                    _ => SwarmServiceType::LoadBalancer,
                },
            },
            swarm_ip: match self.swarm_ip {
                Some(ip) => Some(ip),
                None => match d.need("SWARM_IP")? {
                    "" => None,
                    ip => Some(ip.parse().map_err(|_| Error::Usage(format!("values.env: SWARM_IP {ip:?} is not an IP address")))?),
                },
            },
            rate_limit_per_minute: match self.rate_limit_per_minute {
                Some(r) => r,
                None => port_like(&d, "RATE_LIMIT_PER_MINUTE")?,
            },
            filters_dir: self.filters_dir.clone().unwrap_or_else(|| Path::new("target/wasm32-wasip1/release").to_path_buf()),
            envoy_gateway_version: d.need("ENVOY_GATEWAY_VERSION")?.to_string(),
            cert_manager_version: d.need("CERT_MANAGER_VERSION")?.to_string(),
            port_swarm: port_like(&d, "PORT_SWARM")?,
            port_cluster_rest: port_like(&d, "PORT_CLUSTER_REST")?,
            port_kubo_rpc: port_like(&d, "PORT_KUBO_RPC")?,
            router: json_setting(&self.router_config, &self.router, "--router-config", check_router)?,
            health: json_setting(&self.health_config, &self.health, "--health-config", check_health)?,
        };
        plan.check()?;
        Ok(plan)
    }
}

/// A filter configuration given as a file (`flag`) or inline in the config file (the
/// file wins), checked by `check`.
fn json_setting(file: &Option<PathBuf>, inline: &Option<Value>, flag: &str, check: fn(&Value) -> Result<(), String>) -> Result<Option<Value>, Error> {
    let v = match (file, inline) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("cannot read {flag} {}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{flag} {}: not JSON: {e}", path.display())))?
        }
        (None, Some(v)) => v.clone(),
        (None, None) => return Ok(None),
    };
    check(&v).map_err(Error::Usage)?;
    Ok(Some(v))
}

/// The health configuration checked as the filter checks it when Envoy loads it.
pub fn check_health(v: &Value) -> Result<(), String> {
    if !v.is_object() {
        return Err("the health configuration must be a JSON object".into());
    }
    edge_logic::health::HealthConfig::from_json(v.to_string().as_bytes()).map(|_| ())
}

/// The router configuration checked as the filter checks it when Envoy loads it (an
/// unknown key, a short token, a bad path: the filter would refuse to start).
pub fn check_router(v: &Value) -> Result<(), String> {
    if !v.is_object() {
        return Err("the router configuration must be a JSON object".into());
    }
    edge_logic::router::Policy::from_json(v.to_string().as_bytes()).map(|_| ())
}

fn to_json(s: &Settings) -> Result<Value, Error> {
    serde_json::to_value(s).map_err(|e| Error::Usage(format!("settings: {e}")))
}

fn port_like<T: std::str::FromStr>(d: &Values, key: &str) -> Result<T, Error> {
    d.need(key)?.parse().map_err(|_| Error::Usage(format!("values.env: {key} must be a number")))
}

/// What to deploy, typed and checked once; turned into template values only by `render`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub namespace: String,
    pub domain: String,
    pub acme_email: String,
    pub acme_server: String,
    pub replicas: u32,
    /// Whether `replicas` was set (flag or file) rather than defaulted.
    replicas_given: bool,
    /// Empty: the cluster's default StorageClass.
    pub storage_class: String,
    pub kubo_storage_size: String,
    pub cluster_storage_size: String,
    pub kubo_image: String,
    pub cluster_image: String,
    pub mesh: Mesh,
    pub gateway_class: String,
    pub swarm_service_type: SwarmServiceType,
    /// The reserved address every swarm Service shares, if any.
    pub swarm_ip: Option<std::net::IpAddr>,
    pub rate_limit_per_minute: u32,
    pub filters_dir: PathBuf,
    pub envoy_gateway_version: String,
    pub cert_manager_version: String,
    pub port_swarm: u16,
    pub port_cluster_rest: u16,
    pub port_kubo_rpc: u16,
    /// The router filter's configuration; `None` until given or read back from the cluster
    /// (`keep_router`), then values.env's.
    pub router: Option<Value>,
    /// The health filter's configuration; `None`: values.env's.
    pub health: Option<Value>,
}

impl Plan {
    /// The one place where replicas default to what runs now: a set value wins, then the
    /// StatefulSet's current replicas, then values.env.
    pub fn follow_running(&mut self, running: Option<u32>) {
        if let (false, Some(r)) = (self.replicas_given, running) {
            self.replicas = r;
        }
    }

    /// The router configuration the cluster runs, kept when none was given (a rerun without
    /// the flag must not reset credentials and lock out every write).
    pub fn keep_router(&mut self, running: Option<Value>) -> Result<(), Error> {
        if self.router.is_none() {
            if let Some(v) = running {
                check_router(&v).map_err(|e| {
                    Error::Usage(format!("the router configuration in the cluster is invalid ({e}); pass --router-config FILE"))
                })?;
                self.router = Some(v);
            }
        }
        Ok(())
    }

    /// An explicit number of peers (`scale N`).
    pub fn set_replicas(&mut self, n: u32) -> Result<(), Error> {
        self.replicas = n;
        self.replicas_given = true;
        self.check()
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |key: &str, value: &str, why: &str| Err(Error::Usage(format!("{key}: {value:?} {why}")));
        for (key, v) in [("NAME", &self.name), ("NAMESPACE", &self.namespace)] {
            if !is_dns_label(v) || v.len() > 40 {
                return bad(key, v, "must be a DNS label of at most 40 characters (a-z, 0-9, '-')");
            }
        }
        let domain = &self.domain;
        if domain.is_empty() || !domain.split('.').all(is_dns_label) || !domain.contains('.') {
            return bad("DOMAIN", domain, "must be a fully qualified hostname like ipfs.example.org");
        }
        let email = &self.acme_email;
        if !email.contains('@') || email.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
            return bad("ACME_EMAIL", email, "must be an e-mail address");
        }
        if let Err(e) = self.acme_server.parse::<AcmeServer>() {
            return Err(Error::Usage(format!("ACME_SERVER: {e}")));
        }
        if !(1..=64).contains(&self.replicas) {
            return bad("REPLICAS", &self.replicas.to_string(), "must be a number from 1 to 64");
        }
        for (key, v) in [("KUBO_STORAGE_SIZE", &self.kubo_storage_size), ("CLUSTER_STORAGE_SIZE", &self.cluster_storage_size)] {
            if !is_quantity(v) {
                return bad(key, v, "must be a Kubernetes quantity like 100Gi");
            }
        }
        let class = &self.storage_class;
        if !class.is_empty() && !class.split('.').all(is_dns_label) {
            return bad("STORAGE_CLASS", class, "must be a StorageClass name");
        }
        for (key, image) in [("KUBO_IMAGE", &self.kubo_image), ("CLUSTER_IMAGE", &self.cluster_image)] {
            if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c == '"') {
                return bad(key, image, "must be an image reference");
            }
        }
        if self.swarm_ip.is_some() && self.swarm_service_type != SwarmServiceType::LoadBalancer {
            return Err(Error::Usage("--swarm-ip needs --swarm-service-type load-balancer (a node port has the node's address)".into()));
        }
        Ok(())
    }

    /// Pod `ordinal`'s public swarm port: its own with a shared address, else the same for all.
    pub fn swarm_public_port(&self, ordinal: u32) -> u16 {
        if self.swarm_ip.is_some() { self.port_swarm + ordinal as u16 } else { self.port_swarm }
    }
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
        std::fs::write(&file, "domain: file.example.org\nreplicas: 5\nmesh: istio\nname: from-file\n").unwrap();
        let s = Settings {
            config: Some(file),
            domain: Some("flag.example.org".into()),
            name: Some("from-flag".into()),
            ..Default::default()
        };
        let p = s.merged().unwrap().plan().unwrap();
        assert_eq!(p.domain, "flag.example.org");
        assert_eq!(p.name, "from-flag");
        assert_eq!(p.replicas, 5);
        assert_eq!(p.mesh, Mesh::Istio);
        assert_eq!(p.gateway_class, "istio");
        assert_eq!(p.namespace, "ipfs-cluster");
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
            assert!(matches!(s.plan(), Err(Error::Usage(_))), "{s:?}");
        }
        assert!(matches!(Settings::default().plan().unwrap().set_replicas(65), Err(Error::Usage(_))));
    }

    #[test]
    fn acme_choice_sets_the_server() {
        let s = Settings { acme: Some(Acme::Production), ..Default::default() };
        assert_eq!(s.plan().unwrap().acme_server, Acme::Production.server());
        assert_eq!(Settings::default().plan().unwrap().acme_server, Acme::Staging.server());
        let url: AcmeServer = "https://127.0.0.1:14000/dir".parse().unwrap();
        let s = Settings { acme_server: Some(url), ..Default::default() };
        assert_eq!(s.plan().unwrap().acme_server, "https://127.0.0.1:14000/dir");
        for bad in ["http://127.0.0.1:14000/dir", "https:///dir", "https://ca.test/dir\"/x", "https://ca.test/a b", "ca.test/dir"] {
            assert!(bad.parse::<AcmeServer>().is_err(), "{bad} accepted");
        }
        // From the config file too, checked the same way.
        let s: Settings = serde_yaml_ng::from_str("acme-server: https://ca.test/directory").unwrap();
        assert_eq!(s.plan().unwrap().acme_server, "https://ca.test/directory");
        assert!(serde_yaml_ng::from_str::<Settings>("acme-server: http://ca.test/directory").is_err());
    }

    #[test]
    fn router_configuration_is_checked_with_the_filters_rules() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("router.json");
        std::fs::write(&file, r#"{"credentials": {"bearer_tokens": ["ci-4b1d0c0ffee5eed5a1t"]}}"#).unwrap();
        let p = Settings { router_config: Some(file.clone()), ..Default::default() }.plan().unwrap();
        assert_eq!(p.router.unwrap()["credentials"]["bearer_tokens"][0], "ci-4b1d0c0ffee5eed5a1t");
        // A token the filter would refuse (shorter than 16), an unknown key, not an object.
        for bad in [r#"{"credentials": {"bearer_tokens": ["short"]}}"#, r#"{"presets": "read-only"}"#, "[]"] {
            std::fs::write(&file, bad).unwrap();
            let e = Settings { router_config: Some(file.clone()), ..Default::default() }.plan().unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad}: {e}");
        }
        let e = Settings { router_config: Some(file.clone()), ..Default::default() }.plan().unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        // The config file's `router:` object; a file path wins over it.
        let cfg = dir.path().join("c.yaml");
        std::fs::write(&cfg, "router:\n  preset: field-notes\n").unwrap();
        let p = Settings { config: Some(cfg.clone()), ..Default::default() }.merged().unwrap().plan().unwrap();
        assert_eq!(p.router, Some(serde_json::json!({"preset": "field-notes"})));
        std::fs::write(&file, r#"{"preset": "none"}"#).unwrap();
        let s = Settings { config: Some(cfg), router_config: Some(file), ..Default::default() };
        assert_eq!(s.merged().unwrap().plan().unwrap().router, Some(serde_json::json!({"preset": "none"})));
    }

    #[test]
    fn the_running_router_configuration_is_kept_unless_given() {
        let mut p = Settings::default().plan().unwrap();
        p.keep_router(Some(serde_json::json!({"preset": "none"}))).unwrap();
        assert_eq!(p.router, Some(serde_json::json!({"preset": "none"})));
        p.keep_router(Some(serde_json::json!({"preset": "field-notes"}))).unwrap();
        assert_eq!(p.router, Some(serde_json::json!({"preset": "none"})), "a given configuration wins");
        let mut p = Settings::default().plan().unwrap();
        assert!(p.keep_router(Some(serde_json::json!({"bogus": 1}))).is_err());
    }

    #[test]
    fn replicas_follow_what_runs_unless_set() {
        let mut p = Settings::default().plan().unwrap();
        assert_eq!(p.replicas, 3);
        p.follow_running(Some(5));
        assert_eq!(p.replicas, 5);
        p.follow_running(None);
        assert_eq!(p.replicas, 5);
        let mut p = Settings { replicas: Some(2), ..Default::default() }.plan().unwrap();
        p.follow_running(Some(5));
        assert_eq!(p.replicas, 2);
    }
}
