//! The health filter in front of the real daemons, each behind a recording tap (so a case
//! sees whether a probe reached a backend, and can stop one): passive answers that never
//! touch a backend, and active mode following a backend stopped and restarted. The edge
//! under test runs the health configuration the case names ([`PASSIVE`], [`active`]).

use std::time::{Duration, Instant};

use super::Edge;
use crate::edge::{Answer, Proto, Req};
use crate::recorder::{Recorder, Seen};

/// An edge whose four backends are recording taps in front of peer 0's daemons.
pub trait TappedEdge: Edge {
    /// The taps, by the router's names: `gateway`, `proxy`, `kubo`, `rest`.
    fn taps(&self) -> Vec<&Recorder>;
}

fn tap<'a>(edge: &'a dyn TappedEdge, name: &str) -> &'a Recorder {
    edge.taps().into_iter().find(|t| t.name() == name).unwrap_or_else(|| panic!("no tap {name}"))
}

/// What reached each backend since the last call, by backend name.
pub fn take_seen(edge: &dyn TappedEdge) -> Vec<(String, Seen)> {
    edge.taps().into_iter().flat_map(|t| t.take().into_iter().map(move |s| (t.name().to_string(), s))).collect()
}

fn send(edge: &dyn TappedEdge, req: &Req) -> Answer {
    crate::edge::send_to(edge.port(req.proto), &edge.host(), req).unwrap_or_else(|e| panic!("{} {} over {:?}: {e}", req.method, req.target, req.proto))
}

fn get(edge: &dyn TappedEdge, ua: Option<&str>) -> Answer {
    let mut r = Req::new("GET", "/");
    if let Some(ua) = ua {
        r = r.header("User-Agent", ua);
    }
    send(edge, &r)
}

const OK: &str = "{\"status\":\"ok\"}\n";

/// The health configuration of [`passive_answers_probes_without_touching_a_backend`].
pub const PASSIVE: &str = r#"{"paths": ["/", "/healthz"]}"#;

pub fn passive_answers_probes_without_touching_a_backend(edge: &dyn TappedEdge) {
    take_seen(edge);
    for proto in [Proto::Http10, Proto::Http11, Proto::Http2] {
        for target in ["/", "/healthz", "/?probe=1"] {
            let a = send(edge, &Req::new("GET", target).over(proto));
            assert_eq!((a.status, a.text().as_str()), (200, OK), "{target} over {proto:?}");
            assert_eq!(a.header("content-type"), Some("application/json"));
            assert_eq!(a.header("cache-control"), Some("no-store"));
        }
        let a = send(edge, &Req::new("HEAD", "/").over(proto));
        assert_eq!((a.status, a.body.len()), (200, 0), "HEAD over {proto:?}");
        // Other methods pass on: the router refuses them on a health path.
        let a = send(edge, &Req::new("POST", "/").over(proto));
        assert_eq!((a.status, a.header("allow")), (405, Some("GET, HEAD")), "POST over {proto:?}");
    }
    // Passive mode does not look at the backends: all of them down, still 200.
    for b in edge.taps() {
        b.stop();
    }
    assert_eq!(get(edge, None).status, 200);
    for b in edge.taps() {
        b.restart();
    }
    // Other paths pass untouched.
    let a = send(edge, &Req::new("GET", "/id"));
    assert_eq!(a.header("x-recorder"), Some("rest"), "{} {}", a.status, a.text());
    let seen = take_seen(edge);
    assert_eq!(seen.len(), 1, "only /id may reach a backend: {seen:?}");
}

/// The active-mode configuration of [`active_mode_follows_a_backend_killed_and_restarted`]:
/// checks every 200 ms, N = M = 2; `checks` replaces the default ones (which name
/// manifests/envoy/envoy.yaml's clusters) where the edge's clusters have other names.
pub fn active(checks: Option<serde_json::Value>) -> String {
    let mut a = serde_json::json!({"interval_ms": 200, "timeout_ms": 150, "unhealthy_threshold": 2, "healthy_threshold": 2});
    if let Some(c) = checks {
        a["checks"] = c;
    }
    serde_json::json!({ "active": a }).to_string()
}

/// Polls `GET /` (as a load balancer) until `want` or the deadline.
fn wait_for(edge: &dyn TappedEdge, want: u16, within: Duration) -> (Answer, Duration) {
    let start = Instant::now();
    loop {
        let a = get(edge, Some("GoogleHC/1.0"));
        if a.status == want || start.elapsed() > within {
            return (a, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn active_mode_follows_a_backend_killed_and_restarted(edge: &dyn TappedEdge) {
    // Not checked yet, then healthy once every backend answered.
    let (a, _) = wait_for(edge, 200, Duration::from_secs(10));
    assert_eq!((a.status, a.text().as_str()), (200, OK), "never healthy:\n{}", super::tail(&edge.log(), 40));
    // The default checks reached the backends, as the README says.
    let seen = take_seen(edge);
    let has = |b: &str, m: &str, p: &str| seen.iter().any(|(n, s)| n == b && s.method == m && s.target == p);
    assert!(has("rest", "GET", "/health"), "{seen:?}");
    assert!(has("kubo", "POST", "/api/v0/version"), "{seen:?}");
    assert!(has("gateway", "HEAD", "/ipfs/bafkqaaa"), "{seen:?}");
    assert!(seen.iter().all(|(_, s)| s.target != "/"), "a probe reached a backend");

    tap(edge, "kubo").stop();
    let (a, took) = wait_for(edge, 503, Duration::from_secs(10));
    assert_eq!(a.status, 503, "still {} after Kubo stopped", a.status);
    assert_eq!(a.text(), "{\"status\":\"unhealthy\",\"reason\":\"kubo_rpc: 2 failed checks in a row, last: HTTP 503\"}\n");
    // Two failed rounds of 200 ms (plus the first check's wait).
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // A probe never waits on a backend: answered at once while Kubo is down.
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(edge, Some("GoogleHC/1.0")).status, 503);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "20 probes took {:?}", t.elapsed());

    tap(edge, "kubo").restart();
    let (a, _) = wait_for(edge, 200, Duration::from_secs(10));
    assert_eq!((a.status, a.text().as_str()), (200, OK), "not healthy again after Kubo came back");
    assert!(take_seen(edge).iter().all(|(_, s)| s.target != "/"), "a probe reached a backend");
}
