//! The filters' metrics: every series each filter defines through the
//! Proxy-Wasm metrics ABI, and which series a decision counts.
//!
//! The ABI names a metric with one flat string (no labels), and Envoy
//! stores it as `wasmcustom.<name>`, printing it in `/stats/prometheus`
//! without Envoy's `envoy_` prefix. A label is written into the name as a
//! trailing `.<label>.<value>`; the bootstrap's `stats_config.stats_tags`
//! (one rule per label, [`tag_regex`]) turns it into a Prometheus label:
//! `ipfs_edge_router_routed_total.backend.gateway` is scraped as
//! `ipfs_edge_router_routed_total{backend="gateway"}`. Without those rules
//! the series is still one clearly named metric
//! (`ipfs_edge_router_routed_total_backend_gateway`).
//!
//! Every series is defined once per VM when the filter is configured, so a
//! request costs one `increment_metric` host call per counted fact, by id,
//! with no name built or looked up. Envoy keeps one stat per name for all
//! VMs (one per worker): counters add up across workers; a gauge holds
//! what the last worker recorded.

use crate::add::reply::Reply;
use crate::backend::Backend;
use crate::router::{AuthResult, Decision};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A metric as Prometheus sees it: a name, a kind, at most one label. What
/// each one counts is written in its filter's README (held to this list by
/// tests/consistency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    /// The label's name, and its values when they are fixed (a label whose
    /// values come from the configuration, the health checks' names, has
    /// none here).
    pub label: Option<(&'static str, &'static [&'static str])>,
}

/// The prefix of every metric name (the tag rules match on it).
pub const PREFIX: &str = "ipfs_edge_";

/// The Envoy stat name of one series: the family's name, and the label
/// written as `.<label>.<value>`.
pub fn stat_name(family: &Family, value: Option<&str>) -> String {
    match (family.label, value) {
        (Some((label, _)), Some(v)) => format!("{}.{label}.{}", family.name, label_value(v)),
        _ => family.name.to_string(),
    }
}

/// A label value as the tag rule reads it: `[A-Za-z0-9_]` (a check named
/// after an Istio cluster, `outbound|9094||rest.ns.svc`, keeps its letters).
pub fn label_value(v: &str) -> String {
    let s: String = v.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// The `stats_config.stats_tags` regex that makes `label` a Prometheus
/// label (Envoy removes the first group from the name, the second is the
/// value). Anchored on the stored name, so it never touches Envoy's stats.
pub fn tag_regex(label: &str) -> String {
    format!(r"^wasmcustom\.{PREFIX}\w+(\.{label}\.(\w+))$")
}

/// Every label name a filter uses, for the tag rules.
pub fn labels() -> Vec<&'static str> {
    let mut out: Vec<&str> = ALL.iter().flat_map(|fs| fs.iter()).filter_map(|f| f.label.map(|(l, _)| l)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every family, per filter (router, add_response, health).
pub const ALL: [&[Family]; 3] = [router::FAMILIES, add::FAMILIES, health::FAMILIES];

/// The series of fixed label values, in order: family index, value. The
/// wrappers define them in this order and count by index into it.
fn fixed_series(families: &'static [Family]) -> Vec<(&'static Family, Option<&'static str>)> {
    let mut out = Vec::new();
    for f in families {
        match f.label {
            Some((_, values)) => out.extend(values.iter().map(|v| (f, Some(*v)))),
            None => out.push((f, None)),
        }
    }
    out
}

/// The stat names of a filter whose series are all fixed, in index order.
pub fn fixed_stat_names(families: &'static [Family]) -> Vec<String> {
    fixed_series(families).into_iter().map(|(f, v)| stat_name(f, v)).collect()
}

/// Index of the series (`family`, `value`) in [`fixed_stat_names`] order.
const fn index(families: &[Family], family: usize, value: usize) -> usize {
    let mut i = 0;
    let mut n = 0;
    while i < family {
        n += match families[i].label {
            Some((_, values)) => values.len(),
            None => 1,
        };
        i += 1;
    }
    n + value
}

pub mod router {
    use super::*;

    /// Label values of `routed_total`: the backends' marks, and `platform`
    /// for a request passed unmarked to the platform's own route.
    const ROUTED: &[&str] = &["gateway", "proxy", "kubo", "rest", "health", "platform"];
    /// Refusals by status, named (a bounded set whatever the message).
    const REFUSED: &[&str] =
        &["bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "internal", "other"];
    const CREDENTIALS: &[&str] = &["accepted", "missing", "invalid"];

    pub const FAMILIES: &[Family] = &[
        Family {
            name: "ipfs_edge_router_routed_total",
            kind: Kind::Counter,
            label: Some(("backend", ROUTED)),
        },
        Family {
            name: "ipfs_edge_router_refused_total",
            kind: Kind::Counter,
            label: Some(("reason", REFUSED)),
        },
        Family {
            name: "ipfs_edge_router_credentials_total",
            kind: Kind::Counter,
            label: Some(("result", CREDENTIALS)),
        },
    ];

    fn routed(b: Backend) -> usize {
        let v = match b {
            Backend::Gateway => 0,
            Backend::Proxy => 1,
            Backend::Kubo => 2,
            Backend::Rest => 3,
            Backend::Health => 4,
        };
        index(FAMILIES, 0, v)
    }

    /// The refusal reason's index among `refused_total`'s values.
    pub fn reason(status: u16) -> usize {
        let v = match status {
            400 => 0,
            401 => 1,
            403 => 2,
            404 => 3,
            405 => 4,
            500 => 5,
            _ => 6,
        };
        index(FAMILIES, 1, v)
    }

    fn credential(r: AuthResult) -> usize {
        let v = match r {
            AuthResult::Valid => 0,
            AuthResult::Missing => 1,
            AuthResult::Invalid => 2,
        };
        index(FAMILIES, 2, v)
    }

    /// The series a decision counts (indexes into
    /// `fixed_stat_names(FAMILIES)`): one outcome, and the credential's
    /// when one was looked at.
    pub fn counted(d: &Decision) -> [Option<usize>; 2] {
        match d {
            Decision::Route { backend, credential, .. } => {
                [Some(routed(*backend)), credential.then(|| self::credential(AuthResult::Valid))]
            }
            Decision::Platform => [Some(index(FAMILIES, 0, 5)), None],
            Decision::Refuse(r) => [Some(reason(r.status)), r.credential.map(self::credential)],
        }
    }
}

pub mod add {
    use super::*;

    const ANSWERS: &[&str] = &["rewritten", "unchanged"];
    /// Local replies by what they answer.
    const REPLIES: &[&str] = &["options", "bad_request", "method_not_allowed", "upload_too_large", "kubo_error"];

    pub const FAMILIES: &[Family] = &[
        Family {
            name: "ipfs_edge_add_answers_total",
            kind: Kind::Counter,
            label: Some(("result", ANSWERS)),
        },
        Family {
            name: "ipfs_edge_add_replies_total",
            kind: Kind::Counter,
            label: Some(("reason", REPLIES)),
        },
        Family {
            name: "ipfs_edge_add_long_lines_total",
            kind: Kind::Counter,
            label: None,
        },
        Family {
            name: "ipfs_edge_add_only_hash_total",
            kind: Kind::Counter,
            label: None,
        },
    ];

    /// What the response headers made of an add being rewritten
    /// (`before`): rewritten (`on_response_headers` gave new headers), or
    /// passed as the cluster gave it (no longer rewriting `after`); nothing
    /// when undecided (the host had no headers to read).
    pub fn answer(before: bool, rewritten: bool, after: bool) -> Option<usize> {
        match (before, rewritten, after) {
            (true, true, _) => Some(index(FAMILIES, 0, 0)),
            (true, false, false) => Some(index(FAMILIES, 0, 1)),
            _ => None,
        }
    }

    /// The series of a local reply.
    pub fn reply(r: &Reply) -> usize {
        let v = match r.status {
            204 => 0,
            400 => 1,
            405 => 2,
            413 => 3,
            _ => 4,
        };
        index(FAMILIES, 1, v)
    }

    pub const LONG_LINES: usize = index(FAMILIES, 2, 0);
    pub const ONLY_HASH: usize = index(FAMILIES, 3, 0);
}

pub mod health {
    use super::*;
    use crate::health::{Active, State};

    const PROBES: &[&str] = &["healthy", "unhealthy"];

    pub const FAMILIES: &[Family] = &[
        Family {
            name: "ipfs_edge_health_probes_total",
            kind: Kind::Counter,
            label: Some(("result", PROBES)),
        },
        Family {
            name: "ipfs_edge_health_healthy",
            kind: Kind::Gauge,
            label: None,
        },
        Family {
            name: "ipfs_edge_health_check_healthy",
            kind: Kind::Gauge,
            label: Some(("check", &[])),
        },
        Family {
            name: "ipfs_edge_health_check_failures_total",
            kind: Kind::Counter,
            label: Some(("check", &[])),
        },
    ];

    pub const PROBE_HEALTHY: usize = 0;
    pub const PROBE_UNHEALTHY: usize = 1;
    pub const HEALTHY: usize = 2;

    /// The stat names, in index order: the probes' series, then in active
    /// mode the overall gauge and per check its gauge and failure counter
    /// ([`check_healthy`], [`check_failures`]).
    pub fn stat_names(active: Option<&Active>) -> Vec<String> {
        let mut out = vec![stat_name(&FAMILIES[0], Some(PROBES[0])), stat_name(&FAMILIES[0], Some(PROBES[1]))];
        if let Some(a) = active {
            out.push(stat_name(&FAMILIES[1], None));
            for c in &a.checks {
                out.push(stat_name(&FAMILIES[2], Some(&c.name)));
                out.push(stat_name(&FAMILIES[3], Some(&c.name)));
            }
        }
        out
    }

    /// Which of [`stat_names`] are gauges.
    pub fn gauges(active: Option<&Active>) -> Vec<bool> {
        let mut out = vec![false, false];
        if let Some(a) = active {
            out.push(true);
            for _ in &a.checks {
                out.extend([true, false]);
            }
        }
        out
    }

    pub fn probe(status: u16) -> usize {
        if status == 200 {
            PROBE_HEALTHY
        } else {
            PROBE_UNHEALTHY
        }
    }

    pub fn check_healthy(check: usize) -> usize {
        3 + 2 * check
    }

    pub fn check_failures(check: usize) -> usize {
        3 + 2 * check + 1
    }

    /// A gauge's value for a backend's state.
    pub fn gauge(state: State) -> u64 {
        u64::from(state == State::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{classify, Policy, Request};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn names_are_prometheus_names_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in ALL.iter().flat_map(|fs| fs.iter()) {
            assert!(f.name.starts_with(PREFIX), "{}", f.name);
            assert!(f.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", f.name);
            assert_eq!(f.kind == Kind::Counter, f.name.ends_with("_total"), "{}: counters and only counters end in _total", f.name);
            assert!(seen.insert(f.name), "{} twice", f.name);
            if let Some((label, values)) = f.label {
                for v in values {
                    assert_eq!(label_value(v), *v, "{}: {v}", f.name);
                }
                assert!(label_value(label) == label);
            }
        }
        assert_eq!(labels(), ["backend", "check", "reason", "result"]);
    }

    #[test]
    fn routed_labels_are_the_backend_marks() {
        let names = fixed_stat_names(router::FAMILIES);
        for b in Backend::ALL {
            let d = Decision::Route { backend: b, strip_authorization: true, credential: false };
            let [i, none] = router::counted(&d);
            assert_eq!(names[i.unwrap()], format!("ipfs_edge_router_routed_total.backend.{}", b.header_value()));
            assert_eq!(none, None);
        }
        assert_eq!(names[router::counted(&Decision::Platform)[0].unwrap()], "ipfs_edge_router_routed_total.backend.platform");
    }

    #[test]
    fn decisions_count_their_outcome_and_credential() {
        let names = fixed_stat_names(router::FAMILIES);
        let policy = Policy::from_json(br#"{"preset": "read-only", "credentials": {"bearer_tokens": ["0123456789abcdef0123"]}}"#).unwrap();
        let count = |method: &str, path: &str, auth: Option<&str>| -> Vec<String> {
            let headers: Vec<(&str, &[u8])> = auth.map(|a| ("authorization", a.as_bytes())).into_iter().collect();
            let d = classify(&policy, &Request { method, path: path.as_bytes(), headers: &headers });
            router::counted(&d).into_iter().flatten().map(|i| names[i].clone()).collect()
        };
        assert_eq!(count("POST", "/api/v0/add", Some("Bearer 0123456789abcdef0123")), [
            "ipfs_edge_router_routed_total.backend.proxy",
            "ipfs_edge_router_credentials_total.result.accepted"
        ]);
        assert_eq!(count("POST", "/api/v0/add", None), [
            "ipfs_edge_router_refused_total.reason.unauthorized",
            "ipfs_edge_router_credentials_total.result.missing"
        ]);
        assert_eq!(count("POST", "/api/v0/add", Some("Bearer wrong-token-wrong-token")), [
            "ipfs_edge_router_refused_total.reason.unauthorized",
            "ipfs_edge_router_credentials_total.result.invalid"
        ]);
        assert_eq!(count("POST", "/api/v0/version", None), ["ipfs_edge_router_routed_total.backend.kubo"]);
        assert_eq!(count("POST", "/api/v0/shutdown", None), ["ipfs_edge_router_refused_total.reason.forbidden"]);
        assert_eq!(count("GET", "/api/v0/version", None), ["ipfs_edge_router_refused_total.reason.method_not_allowed"]);
        assert_eq!(count("GET", "/nope", None), ["ipfs_edge_router_refused_total.reason.not_found"]);
        assert_eq!(count("GET", "/ipfs/notacid", None), ["ipfs_edge_router_refused_total.reason.bad_request"]);
        assert_eq!(count("GET", "/.well-known/acme-challenge/x", None), ["ipfs_edge_router_routed_total.backend.platform"]);
        assert_eq!(names[router::reason(500)], "ipfs_edge_router_refused_total.reason.internal");
        assert_eq!(names[router::reason(418)], "ipfs_edge_router_refused_total.reason.other");
    }

    #[test]
    fn add_series_follow_the_replies() {
        let names = fixed_stat_names(add::FAMILIES);
        let reply = |r: &Reply| names[add::reply(r)].clone();
        assert_eq!(reply(&Reply::upload_too_large(10)), "ipfs_edge_add_replies_total.reason.upload_too_large");
        assert_eq!(reply(&Reply::kubo_method_not_allowed()), "ipfs_edge_add_replies_total.reason.method_not_allowed");
        assert_eq!(reply(&Reply::kubo_options()), "ipfs_edge_add_replies_total.reason.options");
        assert_eq!(reply(&Reply::kubo_bad_request("x")), "ipfs_edge_add_replies_total.reason.bad_request");
        assert_eq!(reply(&Reply::only_hash_refused()), "ipfs_edge_add_replies_total.reason.kubo_error");
        assert_eq!(names[add::answer(true, true, true).unwrap()], "ipfs_edge_add_answers_total.result.rewritten");
        assert_eq!(names[add::answer(true, false, false).unwrap()], "ipfs_edge_add_answers_total.result.unchanged");
        assert_eq!(add::answer(true, false, true), None, "no headers yet: undecided");
        assert_eq!(add::answer(false, false, false), None, "not an add being rewritten");
        assert_eq!(names[add::LONG_LINES], "ipfs_edge_add_long_lines_total");
        assert_eq!(names[add::ONLY_HASH], "ipfs_edge_add_only_hash_total");
        assert_eq!(names.len(), 2 + 5 + 1 + 1);
    }

    #[test]
    fn health_series_name_each_check() {
        let config = crate::health::HealthConfig::from_json(br#"{"active": {}}"#).unwrap();
        let active = config.active.as_ref().unwrap();
        let names = health::stat_names(Some(active));
        assert_eq!(names[health::PROBE_HEALTHY], "ipfs_edge_health_probes_total.result.healthy");
        assert_eq!(names[health::PROBE_UNHEALTHY], "ipfs_edge_health_probes_total.result.unhealthy");
        assert_eq!(names[health::HEALTHY], "ipfs_edge_health_healthy");
        for (i, c) in active.checks.iter().enumerate() {
            assert_eq!(names[health::check_healthy(i)], format!("ipfs_edge_health_check_healthy.check.{}", c.name));
            assert_eq!(names[health::check_failures(i)], format!("ipfs_edge_health_check_failures_total.check.{}", c.name));
        }
        assert_eq!(names.len(), 3 + 2 * active.checks.len());
        let gauges = health::gauges(Some(active));
        assert_eq!(gauges.len(), names.len());
        for (name, gauge) in names.iter().zip(gauges) {
            let family = health::FAMILIES.iter().find(|f| name.split('.').next() == Some(f.name)).unwrap();
            assert_eq!(family.kind == Kind::Gauge, gauge, "{name}");
        }
        assert_eq!(health::stat_names(None).len(), 2);
        assert_eq!(label_value("outbound|9094||rest.ns.svc"), "outbound_9094__rest_ns_svc");
        assert_eq!(label_value(""), "_");
    }
}
