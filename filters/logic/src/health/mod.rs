//! Health answers.
//!
//! Passive mode: GET/HEAD on the configured paths get `200` from the proxy.
//! Active mode: a timer checks each backend; after `unhealthy_threshold`
//! failures in a row the answer is `503` with a short JSON reason, after
//! `healthy_threshold` successes `200` again. Answers only read the last
//! known state, they never wait for a check.

use std::time::Duration;

use serde::Deserialize;

/// Which requests on the health paths are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Every GET/HEAD on a health path.
    #[default]
    All,
    /// Only requests whose User-Agent starts with one of `agents`; a browser
    /// on `/` passes through (to a landing page, say).
    Agents,
}

pub const DEFAULT_AGENTS: &[&str] = &[
    "GoogleHC/",
    "ELB-HealthChecker/",
    "kube-probe/",
    "Envoy/HC",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Option<String>,
    cluster: String,
    method: Option<String>,
    path: String,
    authority: Option<String>,
    #[serde(default)]
    expect_status: Vec<u16>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawActive {
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    unhealthy_threshold: Option<u32>,
    healthy_threshold: Option<u32>,
    checks: Option<Vec<RawCheck>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    paths: Option<Vec<String>>,
    #[serde(default)]
    answer: Answer,
    agents: Option<Vec<String>>,
    active: Option<RawActive>,
}

/// One backend check, sent with `dispatch_http_call` to an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub cluster: String,
    pub method: String,
    pub path: String,
    pub authority: String,
    /// Statuses counted as success; empty means any 2xx.
    pub expect_status: Vec<u16>,
}

impl Check {
    /// Headers for the call (the host requires :method, :path, :authority).
    pub fn headers(&self) -> Vec<(&str, &str)> {
        let mut h = vec![
            (":method", self.method.as_str()),
            (":path", self.path.as_str()),
            (":authority", self.authority.as_str()),
            ("user-agent", "ipfs-edge-health"),
        ];
        if self.method == "POST" {
            h.push(("content-length", "0"));
        }
        h
    }

    /// Outcome of one call: the response status, or `None` when the host
    /// reported no response (timeout, connection refused, reset).
    pub fn evaluate(&self, status: Option<u16>) -> Result<(), String> {
        match status {
            None => Err("no response".into()),
            Some(s) if self.expect_status.is_empty() && (200..300).contains(&s) => Ok(()),
            Some(s) if self.expect_status.contains(&s) => Ok(()),
            Some(s) => Err(format!("HTTP {s}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub paths: Vec<String>,
    pub answer: Answer,
    pub agents: Vec<String>,
    pub active: Option<Active>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        // The empty configuration is valid (tests/health.rs); were it not,
        // the filter would answer nothing rather than the VM abort.
        HealthConfig::from_json(b"").unwrap_or_else(|_| HealthConfig {
            paths: Vec::new(),
            answer: Answer::All,
            agents: Vec::new(),
            active: None,
        })
    }
}

/// The checks active mode runs when none are configured, named after
/// manifests/envoy/envoy.yaml's clusters.
pub fn default_checks() -> Vec<Check> {
    let c = |name: &str, method: &str, path: &str| Check {
        name: name.into(),
        cluster: name.into(),
        method: method.into(),
        path: path.into(),
        authority: name.into(),
        expect_status: Vec::new(),
    };
    vec![
        // ipfs-cluster v1.1.6 REST: GET /health answers 204 without auth.
        c("cluster_rest", "GET", "/health"),
        // Kubo RPC is POST-only; version needs no repo work.
        c("kubo_rpc", "POST", "/api/v0/version"),
        // bafkqaaa is the empty identity CID: the gateway serves it from the
        // CID itself, so this checks the gateway, not the network.
        c("gateway", "HEAD", "/ipfs/bafkqaaa"),
    ]
}

/// The backend a default check looks at (by its name): where a configuration
/// generated for another proxy (Envoy Gateway) finds the cluster of each.
pub fn default_check_backend(name: &str) -> Option<crate::backend::Backend> {
    use crate::backend::Backend;
    match name {
        "cluster_rest" => Some(Backend::Rest),
        "kubo_rpc" => Some(Backend::Kubo),
        "gateway" => Some(Backend::Gateway),
        _ => None,
    }
}

fn err_at(path: &str, msg: impl std::fmt::Display) -> String {
    format!("health configuration key `{path}`: {msg}")
}

impl HealthConfig {
    /// Parses the plugin configuration; empty input gives passive mode on
    /// `/` for everyone. Errors name the offending key.
    pub fn from_json(input: &[u8]) -> Result<HealthConfig, String> {
        let raw: RawConfig = crate::plugin_config::parse("health", input)?;
        let paths = raw.paths.unwrap_or_else(|| vec!["/".into()]);
        if paths.is_empty() {
            return Err(err_at("paths", "at least one path"));
        }
        for (i, p) in paths.iter().enumerate() {
            if !crate::path::is_plain(p) {
                return Err(err_at(&format!("paths[{i}]"), format!("{p:?} is not a plain absolute path")));
            }
        }
        let agents = raw
            .agents
            .unwrap_or_else(|| DEFAULT_AGENTS.iter().map(|s| s.to_string()).collect());
        for (i, a) in agents.iter().enumerate() {
            if a.is_empty() {
                return Err(err_at(&format!("agents[{i}]"), "empty prefix would match everyone"));
            }
        }
        let active = match raw.active {
            None => None,
            Some(a) => Some(Self::active(a)?),
        };
        Ok(HealthConfig {
            paths,
            answer: raw.answer,
            agents,
            active,
        })
    }

    fn active(a: RawActive) -> Result<Active, String> {
        let interval_ms = a.interval_ms.unwrap_or(5000);
        if !(100..=3_600_000).contains(&interval_ms) {
            return Err(err_at("active.interval_ms", "between 100 and 3600000"));
        }
        let timeout_ms = a.timeout_ms.unwrap_or(2000.min(interval_ms));
        if timeout_ms == 0 || timeout_ms > interval_ms {
            return Err(err_at("active.timeout_ms", "between 1 and interval_ms"));
        }
        let unhealthy = a.unhealthy_threshold.unwrap_or(3);
        if !(1..=100).contains(&unhealthy) {
            return Err(err_at("active.unhealthy_threshold", "between 1 and 100"));
        }
        let healthy = a.healthy_threshold.unwrap_or(2);
        if !(1..=100).contains(&healthy) {
            return Err(err_at("active.healthy_threshold", "between 1 and 100"));
        }
        let checks = match a.checks {
            None => default_checks(),
            Some(list) => {
                if list.is_empty() {
                    return Err(err_at("active.checks", "at least one check (or leave the key out)"));
                }
                let mut out: Vec<Check> = Vec::new();
                for (i, c) in list.into_iter().enumerate() {
                    let at = |k: &str| format!("active.checks[{i}].{k}");
                    if c.cluster.is_empty() {
                        return Err(err_at(&at("cluster"), "empty cluster name"));
                    }
                    let method = c.method.unwrap_or_else(|| "GET".into());
                    if !matches!(method.as_str(), "GET" | "HEAD" | "POST") {
                        return Err(err_at(&at("method"), "GET, HEAD or POST"));
                    }
                    if !c.path.starts_with('/') || c.path.contains(['#', ' ']) {
                        return Err(err_at(&at("path"), "an origin-form path like \"/health\""));
                    }
                    if c.expect_status.iter().any(|s| !(100..=599).contains(s)) {
                        return Err(err_at(&at("expect_status"), "HTTP statuses between 100 and 599"));
                    }
                    let name = c.name.unwrap_or_else(|| c.cluster.clone());
                    if out.iter().any(|o| o.name == name) {
                        return Err(err_at(&at("name"), format!("duplicate check name {name:?}")));
                    }
                    out.push(Check {
                        authority: c.authority.unwrap_or_else(|| c.cluster.clone()),
                        name,
                        cluster: c.cluster,
                        method,
                        path: c.path,
                        expect_status: c.expect_status,
                    });
                }
                out
            }
        };
        Ok(Active {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            unhealthy_threshold: unhealthy,
            healthy_threshold: healthy,
            checks,
        })
    }

    /// Whether every answer is fixed: passive mode answering everyone, so a
    /// GET or HEAD on a health path always gets [`ok_answer`] and the proxy
    /// can give it without this filter (Envoy's own `direct_response`; the
    /// deployer does so under Envoy Gateway). Active mode answers from the
    /// checks, `answer: agents` by User-Agent: those need the filter.
    pub fn answers_are_fixed(&self) -> bool {
        self.active.is_none() && self.answer == Answer::All
    }

    /// Whether this filter answers the request itself. `path` is the raw
    /// `:path`; the query is ignored (probes sometimes add one).
    pub fn takes(&self, method: &str, path: &[u8], user_agent: Option<&[u8]>) -> bool {
        if method != "GET" && method != "HEAD" {
            return false;
        }
        let p = match path.iter().position(|&b| b == b'?') {
            Some(i) => &path[..i],
            None => path,
        };
        if !self.paths.iter().any(|h| h.as_bytes() == p) {
            return false;
        }
        match self.answer {
            Answer::All => true,
            Answer::Agents => user_agent.is_some_and(|ua| {
                self.agents
                    .iter()
                    .any(|a| ua.len() >= a.len() && ua[..a.len()].eq_ignore_ascii_case(a.as_bytes()))
            }),
        }
    }
}

/// State of one checked backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No check finished yet: answered as unhealthy, so a fresh Envoy does
    /// not report ready before it has seen its backends.
    Unknown,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone)]
pub struct BackendHealth {
    pub name: String,
    pub state: State,
    pub failures_in_row: u32,
    pub successes_in_row: u32,
    pub last_error: Option<String>,
}

/// The active-mode state machine for all checks.
#[derive(Debug, Clone)]
pub struct Tracker {
    unhealthy_threshold: u32,
    healthy_threshold: u32,
    pub backends: Vec<BackendHealth>,
}

impl Tracker {
    pub fn new(active: &Active) -> Tracker {
        Tracker {
            unhealthy_threshold: active.unhealthy_threshold,
            healthy_threshold: active.healthy_threshold,
            backends: active
                .checks
                .iter()
                .map(|c| BackendHealth {
                    name: c.name.clone(),
                    state: State::Unknown,
                    failures_in_row: 0,
                    successes_in_row: 0,
                    last_error: None,
                })
                .collect(),
        }
    }

    /// Records the outcome of one check of backend `i` (ignored if out of
    /// range: a stale token must not panic the VM).
    pub fn record(&mut self, i: usize, outcome: Result<(), String>) {
        let Some(b) = self.backends.get_mut(i) else {
            return;
        };
        match outcome {
            Ok(()) => {
                b.failures_in_row = 0;
                b.successes_in_row = b.successes_in_row.saturating_add(1);
                // The first success after start is enough, as in Envoy's
                // own active health checking; a recovery needs M in a row.
                if b.state == State::Unknown || b.successes_in_row >= self.healthy_threshold {
                    b.state = State::Healthy;
                    b.last_error = None;
                }
            }
            Err(e) => {
                b.successes_in_row = 0;
                b.failures_in_row = b.failures_in_row.saturating_add(1);
                b.last_error = Some(e);
                if b.failures_in_row >= self.unhealthy_threshold {
                    b.state = State::Unhealthy;
                }
            }
        }
    }

    pub fn healthy(&self) -> bool {
        self.backends.iter().all(|b| b.state == State::Healthy)
    }

    /// Status and JSON body of the answer (the body is dropped for HEAD by
    /// the caller).
    pub fn answer(&self) -> (u16, String) {
        if self.healthy() {
            return ok_answer();
        }
        let reasons: Vec<String> = self
            .backends
            .iter()
            .filter(|b| b.state != State::Healthy)
            .map(|b| match (b.state, &b.last_error) {
                (State::Unknown, None) => format!("{}: not checked yet", b.name),
                (State::Unknown, Some(e)) => format!("{}: not healthy yet, last: {e}", b.name),
                (_, _) if b.successes_in_row > 0 => format!(
                    "{}: recovering, {} of {} good checks",
                    b.name, b.successes_in_row, self.healthy_threshold
                ),
                (_, e) => format!(
                    "{}: {} failed checks in a row, last: {}",
                    b.name,
                    b.failures_in_row,
                    e.as_deref().unwrap_or("?")
                ),
            })
            .collect();
        // "status" first, for people reading it with curl.
        let reason = serde_json::Value::String(reasons.join("; ")).to_string();
        (503, format!("{{\"status\":\"unhealthy\",\"reason\":{reason}}}\n"))
    }
}

/// The passive (and healthy) answer.
pub fn ok_answer() -> (u16, String) {
    (200, "{\"status\":\"ok\"}\n".to_string())
}
