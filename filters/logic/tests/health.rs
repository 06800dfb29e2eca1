//! Health logic: configuration, which requests are answered, the N/M state
//! machine. Host and wasm32 (wasm-bindgen-test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::time::Duration;

use edge_logic::health::{ok_answer, Answer, HealthConfig, State, Tracker};

fn cfg(json: &str) -> HealthConfig {
    HealthConfig::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn empty_configuration_is_passive_on_slash_for_everyone() {
    let c = cfg("");
    assert_eq!(c, cfg("{}"));
    assert_eq!(c.paths, vec!["/"]);
    assert_eq!(c.answer, Answer::All);
    assert!(c.active.is_none());
    assert!(c.takes("GET", b"/", None));
    assert!(c.takes("HEAD", b"/?x=1", None));
    assert!(!c.takes("POST", b"/", None));
    assert!(!c.takes("GET", b"/ipfs/bafkqaaa", None));
    assert!(!c.takes("GET", b"//", None));
    assert_eq!(ok_answer(), (200, "{\"status\":\"ok\"}\n".to_string()));
}

#[test]
fn only_passive_mode_for_everyone_has_fixed_answers() {
    assert!(cfg("{}").answers_are_fixed());
    assert!(cfg(r#"{"paths":["/","/healthz"]}"#).answers_are_fixed());
    assert!(!cfg(r#"{"answer":"agents"}"#).answers_are_fixed());
    assert!(!cfg(r#"{"active":{}}"#).answers_are_fixed());
}

#[test]
fn agents_mode_answers_only_known_checkers() {
    let c = cfg(r#"{"answer":"agents","paths":["/","/healthz"]}"#);
    assert!(c.takes("GET", b"/", Some(b"GoogleHC/1.0")));
    assert!(c.takes("GET", b"/healthz", Some(b"kube-probe/1.30")));
    assert!(c.takes("HEAD", b"/", Some(b"ELB-HealthChecker/2.0")));
    assert!(!c.takes("GET", b"/", Some(b"Mozilla/5.0")));
    assert!(!c.takes("GET", b"/", None));
    let c = cfg(r#"{"answer":"agents","agents":["my-lb/"]}"#);
    assert!(c.takes("GET", b"/", Some(b"My-LB/3")));
    assert!(!c.takes("GET", b"/", Some(b"GoogleHC/1.0")));
}

#[test]
fn active_defaults() {
    let c = cfg(r#"{"active":{}}"#);
    let a = c.active.unwrap();
    assert_eq!(a.interval, Duration::from_secs(5));
    assert_eq!(a.timeout, Duration::from_secs(2));
    assert_eq!((a.unhealthy_threshold, a.healthy_threshold), (3, 2));
    let names: Vec<_> = a.checks.iter().map(|c| (c.cluster.as_str(), c.method.as_str(), c.path.as_str())).collect();
    assert_eq!(
        names,
        vec![
            ("cluster_rest", "GET", "/health"),
            ("kubo_rpc", "POST", "/api/v0/version"),
            ("gateway", "HEAD", "/ipfs/bafkqaaa")
        ]
    );
    let h = a.checks[1].headers();
    assert!(h.contains(&(":authority", "kubo_rpc")) && h.contains(&("content-length", "0")));
}

#[test]
fn configuration_errors_name_the_key() {
    for (json, key) in [
        (r#"{"path":["/"]}"#, "path"),
        (r#"{"paths":"/"}"#, "paths"),
        (r#"{"paths":["health"]}"#, "paths[0]"),
        (r#"{"answer":"some"}"#, "answer"),
        (r#"{"agents":[""]}"#, "agents[0]"),
        (r#"{"active":{"interval":5}}"#, "interval"),
        (r#"{"active":{"interval_ms":"5"}}"#, "active.interval_ms"),
        (r#"{"active":{"interval_ms":10}}"#, "active.interval_ms"),
        (r#"{"active":{"interval_ms":1000,"timeout_ms":2000}}"#, "active.timeout_ms"),
        (r#"{"active":{"unhealthy_threshold":0}}"#, "active.unhealthy_threshold"),
        (r#"{"active":{"healthy_threshold":-1}}"#, "active.healthy_threshold"),
        (r#"{"active":{"checks":[]}}"#, "active.checks"),
        (r#"{"active":{"checks":[{"cluster":"a"}]}}"#, "path"),
        (r#"{"active":{"checks":[{"cluster":"a","path":"/","method":"DELETE"}]}}"#, "active.checks[0].method"),
        (r#"{"active":{"checks":[{"cluster":"a","path":"/","expect_status":[99]}]}}"#, "active.checks[0].expect_status"),
        (r#"{"active":{"checks":[{"cluster":"a","path":"/"},{"cluster":"a","path":"/x"}]}}"#, "active.checks[1].name"),
        (r#"{"active":{"checks":[{"cluster":"a","path":"/","timeout":1}]}}"#, "timeout"),
    ] {
        let e = HealthConfig::from_json(json.as_bytes()).unwrap_err();
        assert!(e.contains(key), "{json}: {e}");
    }
}

fn tracker(json: &str) -> (Tracker, HealthConfig) {
    let c = cfg(json);
    (Tracker::new(c.active.as_ref().unwrap()), c)
}

#[test]
fn unknown_until_first_success() {
    let (mut t, _) = tracker(r#"{"active":{"checks":[{"cluster":"a","path":"/"},{"cluster":"b","path":"/"}]}}"#);
    let (s, body) = t.answer();
    assert_eq!(s, 503);
    assert!(body.contains("a: not checked yet"), "{body}");
    t.record(0, Ok(()));
    assert_eq!(t.answer().0, 503);
    t.record(1, Ok(()));
    assert_eq!(t.answer(), ok_answer());
}

#[test]
fn n_failures_then_m_successes() {
    let (mut t, _) = tracker(
        r#"{"active":{"unhealthy_threshold":3,"healthy_threshold":2,"checks":[{"name":"kubo","cluster":"kubo_rpc","path":"/"}]}}"#,
    );
    t.record(0, Ok(()));
    assert!(t.healthy());
    t.record(0, Err("HTTP 500".into()));
    t.record(0, Err("HTTP 500".into()));
    assert!(t.healthy(), "two failures are below N=3");
    t.record(0, Ok(()));
    t.record(0, Err("no response".into()));
    t.record(0, Err("no response".into()));
    assert!(t.healthy(), "a success in between resets the count");
    t.record(0, Err("no response".into()));
    assert_eq!(t.backends[0].state, State::Unhealthy);
    let (s, body) = t.answer();
    assert_eq!(s, 503);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["reason"], "kubo: 3 failed checks in a row, last: no response");
    t.record(0, Ok(()));
    assert_eq!(t.answer().0, 503, "one success is below M=2");
    assert!(t.answer().1.contains("recovering, 1 of 2"));
    t.record(0, Ok(()));
    assert_eq!(t.answer(), ok_answer());
}

#[test]
fn out_of_range_records_are_ignored() {
    let (mut t, _) = tracker(r#"{"active":{}}"#);
    t.record(99, Err("x".into()));
    assert_eq!(t.backends.len(), 3);
}

#[test]
fn evaluate_statuses() {
    let (_, c) = tracker(r#"{"active":{"checks":[{"cluster":"a","path":"/"},{"cluster":"b","path":"/","expect_status":[200,404]}]}}"#);
    let a = c.active.unwrap();
    assert!(a.checks[0].evaluate(Some(204)).is_ok());
    assert_eq!(a.checks[0].evaluate(Some(301)), Err("HTTP 301".into()));
    assert_eq!(a.checks[0].evaluate(None), Err("no response".into()));
    assert!(a.checks[1].evaluate(Some(404)).is_ok());
    assert!(a.checks[1].evaluate(Some(204)).is_err());
}

/// The worked example of filters/health/README.md.
#[test]
fn readme_worked_example() {
    let c = cfg(
        r#"{
  "paths": ["/", "/healthz"],
  "answer": "agents",
  "agents": ["GoogleHC/", "kube-probe/"],
  "active": {
    "interval_ms": 2000,
    "timeout_ms": 1000,
    "unhealthy_threshold": 2,
    "healthy_threshold": 3,
    "checks": [
      { "cluster": "kubo_rpc", "method": "POST", "path": "/api/v0/version" },
      { "name": "cluster", "cluster": "cluster_rest", "path": "/id", "expect_status": [200] }
    ]
  }
}"#,
    );
    assert!(c.takes("GET", b"/healthz", Some(b"kube-probe/1.30")));
    assert!(!c.takes("GET", b"/", Some(b"Mozilla/5.0")));
    let mut t = Tracker::new(c.active.as_ref().unwrap());
    t.record(0, Ok(()));
    t.record(1, Ok(()));
    assert_eq!(t.answer(), ok_answer());
    t.record(0, Err("HTTP 503".into()));
    t.record(0, Err("HTTP 503".into()));
    assert_eq!(
        t.answer(),
        (503, "{\"status\":\"unhealthy\",\"reason\":\"kubo_rpc: 2 failed checks in a row, last: HTTP 503\"}\n".to_string())
    );
    for _ in 0..2 {
        t.record(0, Ok(()));
        assert_eq!(t.answer().0, 503);
    }
    t.record(0, Ok(()));
    assert_eq!(t.answer().0, 200);
}

#[test]
fn every_default_check_names_the_backend_it_looks_at() {
    // A proxy whose clusters are named otherwise (Envoy Gateway) finds each check's
    // cluster through its backend: a default check without one would be left pointing
    // at a cluster that does not exist there.
    let checks = edge_logic::health::default_checks();
    let backends: Vec<_> = checks.iter().map(|c| edge_logic::health::default_check_backend(&c.name)).collect();
    assert!(backends.iter().all(Option::is_some), "{checks:?}");
    let distinct: std::collections::BTreeSet<&str> = backends.iter().flatten().map(|b| b.header_value()).collect();
    assert_eq!(distinct.len(), checks.len(), "one backend per check");
}
