//! The three filters' plugin configurations (`plugin_config`,
//! `AddConfig::from_json`, `HealthConfig::from_json`, `Policy::from_json`) on
//! the same bytes. Properties:
//! - a refusal names its filter (the line Envoy logs);
//! - JSON whitespace does not change what is accepted, nor what it means;
//! - what is accepted works: add's `max_line_bytes` is at least 256; every
//!   health path is answered by the health filter (unless it only answers
//!   known agents); every router health path routes to `health` and every
//!   platform path is left to the platform, reached with the path
//!   percent-encoded as a client would send it;
//! - every plain-text bearer token the router accepts opens a credential
//!   route with `Bearer <token>` (its digest does not), and is named among
//!   the entries reported as plain text, as many as there are.
#![no_main]

use edge_logic::add::config::AddConfig;
use edge_logic::health::{Answer, HealthConfig};
use edge_logic::router::{classify, Decision, Policy, Request};
use libfuzzer_sys::fuzz_target;

/// The same JSON with a space after every structural character outside
/// strings.
fn spaced(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 2);
    let (mut in_string, mut escaped) = (false, false);
    for &b in input {
        out.push(b);
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b'{' | b'}' | b'[' | b']' | b':' | b',') {
            out.push(b' ');
        }
    }
    out
}

/// A path as a client sends it: everything but unreserved characters and
/// `/` percent-encoded.
fn encoded(p: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for &b in p.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            v.push(b);
        } else {
            v.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    v
}

fuzz_target!(init: edge_fuzz::init("plugin_config"), |data: &[u8]| {
    let again = spaced(data);

    let add = AddConfig::from_json(data);
    match &add {
        Ok(c) => assert!(c.max_line_bytes >= 256),
        Err(e) => assert!(e.starts_with("add_response configuration"), "{e}"),
    }
    assert_eq!(add.as_ref().ok(), AddConfig::from_json(&again).as_ref().ok(), "whitespace changed the add configuration");

    let health = HealthConfig::from_json(data);
    match &health {
        Ok(c) => {
            for p in &c.paths {
                let takes = c.takes("GET", p.as_bytes(), None);
                assert_eq!(takes, c.answer == Answer::All, "health path {p:?}");
                assert_eq!(takes, c.takes("HEAD", format!("{p}?probe=1").as_bytes(), None), "query on {p:?}");
                if let Some(a) = c.agents.first() {
                    assert!(c.takes("GET", p.as_bytes(), Some(format!("{a}1.0").as_bytes())), "agent {a:?} on {p:?}");
                }
            }
            if let Some(active) = &c.active {
                for check in &active.checks {
                    assert_eq!(check.headers()[0], (":method", check.method.as_str()));
                    assert!(check.evaluate(None).is_err());
                }
            }
        }
        Err(e) => assert!(e.starts_with("health configuration"), "{e}"),
    }
    assert_eq!(health.as_ref().ok(), HealthConfig::from_json(&again).as_ref().ok(), "whitespace changed the health configuration");

    let router = Policy::from_json(data);
    let router_again = Policy::from_json(&again);
    assert_eq!(
        router.as_ref().ok().map(|p| format!("{p:?}")),
        router_again.as_ref().ok().map(|p| format!("{p:?}")),
        "whitespace changed the router configuration"
    );
    match &router {
        Ok(policy) => {
            let decide = |method: &str, path: &[u8]| classify(policy, &Request { method, path, headers: &[] });
            for p in &policy.health_paths {
                let d = decide("GET", &encoded(p));
                assert!(
                    matches!(d, Decision::Route { backend: edge_logic::backend::Backend::Health, .. } | Decision::Platform),
                    "health path {p:?}: {d:?}"
                );
            }
            let platform = serde_json::from_slice::<serde_json::Value>(data).ok().and_then(|v| v.get("platform_paths").cloned());
            let paths: Vec<String> = match platform.as_ref().and_then(|v| v.as_array()) {
                Some(a) => a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect(),
                None => vec!["/.well-known/acme-challenge/".into()],
            };
            for p in paths {
                let below = format!("{}/x", p.trim_end_matches('/'));
                let d = decide("GET", &encoded(&below));
                assert_eq!(d, Decision::Platform, "platform path {p:?}");
            }
            let json = serde_json::from_slice::<serde_json::Value>(data).ok();
            let creds = json.as_ref().map(|v| v["credentials"].clone()).unwrap_or_default();
            let tokens: Vec<String> = creds["bearer_tokens"].as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default();
            let plain: Vec<&String> = tokens.iter().filter(|t| !t.starts_with(edge_logic::router::auth::SHA256_PREFIX)).collect();
            let plain_basic = creds["basic"].as_object().map_or(0, |m| m.values().filter(|p| !p.as_str().is_some_and(|p| p.starts_with('$'))).count());
            assert_eq!(policy.credentials.plain_text().len(), plain.len() + plain_basic, "plain-text entries reported");
            for t in plain {
                let ok = format!("Bearer {t}");
                assert_eq!(policy.credentials.check(&[ok.as_bytes()]), edge_logic::router::AuthResult::Valid, "token {t:?}");
                let digest = format!("Bearer {}", edge_logic::router::bearer_digest(t));
                assert_ne!(policy.credentials.check(&[digest.as_bytes()]), edge_logic::router::AuthResult::Valid, "the digest of {t:?} as a token");
            }
        }
        Err(e) => assert!(e.starts_with("router configuration"), "{e}"),
    }
});
