//! Router plugin configuration: JSON in, a checked [`Policy`] out.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::auth::Credentials;
use super::tables::{PRESET_FIELD_NOTES, PRESET_READ_ONLY, PROXY_COMMANDS, REST_ROUTES};

/// Who may use a command or route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anyone.
    Public,
    /// Only with a configured bearer token or Basic user.
    Credential,
    /// Nobody (403).
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Reads public, cluster writes with a credential.
    #[default]
    ReadOnly,
    /// The field notes' public set (add, block, get, dag/put, object/*).
    FieldNotes,
    /// Nothing: only the `rpc` entries.
    None,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    #[serde(default)]
    bearer_tokens: Vec<String>,
    #[serde(default)]
    basic: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    preset: Preset,
    #[serde(default)]
    rpc: BTreeMap<String, Access>,
    #[serde(default)]
    rest: BTreeMap<String, Access>,
    gateway: Option<Access>,
    kubo_direct: Option<bool>,
    health_paths: Option<Vec<String>>,
    platform_paths: Option<Vec<String>>,
    #[serde(default)]
    credentials: RawCredentials,
    #[serde(default)]
    forward_authorization: bool,
}

/// The checked router policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// RPC command (`pin/add`) -> access; absent means 403.
    pub rpc: BTreeMap<String, Access>,
    /// Index into REST_ROUTES -> access.
    pub rest: Vec<Access>,
    pub gateway: Access,
    /// Send commands the cluster proxy does not intercept straight to Kubo.
    pub kubo_direct: bool,
    /// Decoded canonical paths (`/`, `/healthz`) marked `health`.
    pub health_paths: Vec<String>,
    /// Path prefixes left to the platform's own routes: neither refused nor
    /// marked.
    pub platform_paths: Vec<PathPrefix>,
    pub credentials: Credentials,
    pub forward_authorization: bool,
}

impl Default for Policy {
    fn default() -> Self {
        // The empty configuration is valid (tests/router.rs); were it not,
        // nothing would pass rather than the VM abort.
        Policy::from_json(b"").unwrap_or_else(|_| Policy::deny_all())
    }
}

impl Policy {
    /// A policy that lets nothing through.
    fn deny_all() -> Policy {
        Policy {
            rpc: BTreeMap::new(),
            rest: vec![Access::Deny; REST_ROUTES.len()],
            gateway: Access::Deny,
            kubo_direct: true,
            health_paths: Vec::new(),
            platform_paths: Vec::new(),
            credentials: Credentials::default(),
            forward_authorization: false,
        }
    }

    /// Parses the plugin configuration. Empty input (or only whitespace)
    /// gives the defaults. Errors name the offending key.
    pub fn from_json(input: &[u8]) -> Result<Policy, String> {
        let raw: RawConfig = crate::plugin_config::parse("router", input)?;

        let mut rpc: BTreeMap<String, Access> = BTreeMap::new();
        let preset: &[(&str, Access)] = match raw.preset {
            Preset::ReadOnly => PRESET_READ_ONLY,
            Preset::FieldNotes => PRESET_FIELD_NOTES,
            Preset::None => &[],
        };
        for (cmd, access) in preset {
            rpc.insert((*cmd).to_string(), *access);
        }
        for (cmd, access) in raw.rpc {
            if !valid_command_name(&cmd) {
                return Err(format!(
                    "router configuration key `rpc.{cmd}`: command names are lowercase words separated by '/', e.g. \"pin/add\""
                ));
            }
            rpc.insert(cmd, access);
        }
        // Deny entries need no storage: absence is refusal.
        rpc.retain(|_, a| *a != Access::Deny);

        let mut rest: Vec<Access> = REST_ROUTES.iter().map(|r| r.default).collect();
        for (key, access) in raw.rest {
            match REST_ROUTES.iter().position(|r| r.key == key) {
                Some(i) => rest[i] = access,
                None => {
                    return Err(format!(
                        "router configuration key `rest.{key}`: not a route of the ipfs-cluster v1.1.6 REST API; use one of: {}",
                        REST_ROUTES.iter().map(|r| r.key).collect::<Vec<_>>().join(", ")
                    ))
                }
            }
        }

        let health_paths = raw.health_paths.unwrap_or_else(|| vec!["/".to_string()]);
        for (i, p) in health_paths.iter().enumerate() {
            if !crate::path::is_plain(p) {
                return Err(format!(
                    "router configuration key `health_paths[{i}]`: {p:?} must be a plain absolute path like \"/\" or \"/healthz\""
                ));
            }
        }

        let platform_paths = raw
            .platform_paths
            .unwrap_or_else(|| DEFAULT_PLATFORM_PATHS.iter().map(|p| (*p).to_string()).collect())
            .iter()
            .enumerate()
            .map(|(i, p)| {
                PathPrefix::parse(p).ok_or_else(|| {
                    format!(
                        "router configuration key `platform_paths[{i}]`: {p:?} must be a plain absolute path below / like \"/.well-known/acme-challenge/\""
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let credentials = Credentials::new(raw.credentials.bearer_tokens, raw.credentials.basic)
            .map_err(|(key, msg)| format!("router configuration key `credentials.{key}`: {msg}"))?;

        Ok(Policy {
            rpc,
            rest,
            gateway: raw.gateway.unwrap_or(Access::Public),
            kubo_direct: raw.kubo_direct.unwrap_or(true),
            health_paths,
            platform_paths,
            credentials,
            forward_authorization: raw.forward_authorization,
        })
    }

    /// Whether `cmd` is sent to the cluster proxy (else Kubo).
    pub fn via_proxy(&self, cmd: &str) -> bool {
        !self.kubo_direct || PROXY_COMMANDS.contains(&cmd)
    }
}

/// Where cert-manager's HTTP-01 solver answers the ACME challenge (RFC 8555
/// section 8.3): its route must be reachable for the certificate to renew.
pub const DEFAULT_PLATFORM_PATHS: &[&str] = &["/.well-known/acme-challenge/"];

/// A path prefix, compared segment by segment with the decoded path the
/// router decides on, so `/a/b/` covers `/a/b/c` but not `/a/bc`, nor a
/// path that only spells its way into it (`/a/x/../b/c` is refused before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix {
    segments: Vec<String>,
    /// Written with a trailing `/`: only paths below it, not itself.
    below_only: bool,
}

impl PathPrefix {
    /// A plain absolute path (`crate::path`) of at least one segment, `/`
    /// after it allowed (`/` alone would take every request away from the
    /// router).
    pub fn parse(p: &str) -> Option<PathPrefix> {
        let body = p.strip_prefix('/')?;
        let below_only = body.ends_with('/');
        let body = body.strip_suffix('/').unwrap_or(body);
        let segments: Vec<String> = body.split('/').map(str::to_string).collect();
        segments.iter().all(|s| crate::path::is_plain_segment(s)).then_some(PathPrefix { segments, below_only })
    }

    /// Its first segment (`.well-known` for the default).
    pub fn first_segment(&self) -> Option<&str> {
        self.segments.first().map(String::as_str)
    }

    /// Whether decoded path `segments` are under this prefix.
    pub fn covers(&self, segments: &[String]) -> bool {
        let n = self.segments.len();
        segments.len() >= n + usize::from(self.below_only) && segments[..n] == self.segments[..]
    }
}

fn valid_command_name(cmd: &str) -> bool {
    !cmd.is_empty()
        && cmd.split('/').all(|w| {
            !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}
