//! The health filter in a real Envoy (manifests/envoy/envoy.yaml, all three
//! filters) in front of the real daemons of a local cluster peer, through a
//! recording tap each: passive answers that never touch a backend, agent
//! mode, and active mode with a backend (its tap) stopped and restarted.

use std::time::{Duration, Instant};

use e2e::edge::{Answer, EdgeStack, Proto, Req};

const OK: &str = "{\"status\":\"ok\"}\n";

fn get(stack: &EdgeStack, ua: Option<&str>) -> Answer {
    let mut r = Req::new("GET", "/");
    if let Some(ua) = ua {
        r = r.header("User-Agent", ua);
    }
    stack.send(&r).expect("answer")
}

#[test]
fn passive_answers_probes_without_touching_a_backend() {
    let stack = EdgeStack::start(r#"{"preset": "read-only"}"#, r#"{"paths": ["/", "/healthz"]}"#);
    for proto in [Proto::Http10, Proto::Http11, Proto::Http2] {
        for target in ["/", "/healthz", "/?probe=1"] {
            let a = stack.send(&Req::new("GET", target).over(proto)).unwrap();
            assert_eq!((a.status, a.text().as_str()), (200, OK), "{target} over {proto:?}");
            assert_eq!(a.header("content-type"), Some("application/json"));
            assert_eq!(a.header("cache-control"), Some("no-store"));
        }
        let a = stack.send(&Req::new("HEAD", "/").over(proto)).unwrap();
        assert_eq!((a.status, a.body.len()), (200, 0), "HEAD over {proto:?}");
        // Other methods pass on: the router refuses them on a health path.
        let a = stack.send(&Req::new("POST", "/").over(proto)).unwrap();
        assert_eq!((a.status, a.header("allow")), (405, Some("GET, HEAD")), "POST over {proto:?}");
    }
    // Passive mode does not look at the backends: all of them down, still 200.
    for b in stack.backends() {
        b.stop();
    }
    assert_eq!(get(&stack, None).status, 200);
    for b in stack.backends() {
        b.restart();
    }
    // Other paths pass untouched.
    let a = stack.send(&Req::new("GET", "/id")).unwrap();
    assert_eq!(a.header("x-recorder"), Some("rest"));
    let seen = stack.take_seen();
    assert_eq!(seen.len(), 1, "only /id may reach a backend: {seen:?}");
}

#[test]
fn agents_mode_answers_health_checkers_only() {
    let stack = EdgeStack::start(r#"{"preset": "read-only"}"#, r#"{"answer": "agents"}"#);
    for ua in ["GoogleHC/1.0", "ELB-HealthChecker/2.0", "kube-probe/1.30", "googlehc/1.0"] {
        let a = get(&stack, Some(ua));
        assert_eq!((a.status, a.text().as_str(), a.header("cache-control")), (200, OK, Some("no-store")), "{ua}");
    }
    // A browser passes on: the router marks it `health`, whose route answers
    // (the manifest's landing-page stand-in, without the filter's headers).
    for ua in [Some("Mozilla/5.0"), None] {
        let a = get(&stack, ua);
        assert_eq!((a.status, a.text().as_str()), (200, OK), "{ua:?}");
        assert_eq!(a.header("cache-control"), None, "{ua:?} was answered by the filter");
    }
    assert!(stack.take_seen().is_empty());
}

/// Polls `GET /` (as a load balancer) until `want` or the deadline.
fn wait_for(stack: &EdgeStack, want: u16, within: Duration) -> (Answer, Duration) {
    let start = Instant::now();
    loop {
        let a = get(stack, Some("GoogleHC/1.0"));
        if a.status == want || start.elapsed() > within {
            return (a, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn active_mode_follows_a_backend_killed_and_restarted() {
    let health = r#"{"active": {"interval_ms": 200, "timeout_ms": 150, "unhealthy_threshold": 2, "healthy_threshold": 2}}"#;
    let stack = EdgeStack::start(r#"{"preset": "read-only"}"#, health);
    // Not checked yet, then healthy once every backend answered.
    let (a, _) = wait_for(&stack, 200, Duration::from_secs(10));
    assert_eq!((a.status, a.text().as_str()), (200, OK), "never healthy:\n{}", stack.envoy.log());
    // The default checks reached the backends, as the README says.
    let seen = stack.take_seen();
    let has = |b: &str, m: &str, p: &str| seen.iter().any(|(n, s)| n == b && s.method == m && s.target == p);
    assert!(has("rest", "GET", "/health"), "{seen:?}");
    assert!(has("kubo", "POST", "/api/v0/version"), "{seen:?}");
    assert!(has("gateway", "HEAD", "/ipfs/bafkqaaa"), "{seen:?}");
    assert!(!has("gateway", "GET", "/") && seen.iter().all(|(_, s)| s.target != "/"), "a probe reached a backend");

    stack.kubo.stop();
    let (a, took) = wait_for(&stack, 503, Duration::from_secs(10));
    assert_eq!(a.status, 503, "still {} after Kubo stopped", a.status);
    assert_eq!(a.text(), "{\"status\":\"unhealthy\",\"reason\":\"kubo_rpc: 2 failed checks in a row, last: HTTP 503\"}\n");
    // Two failed rounds of 200 ms (plus the first check's wait).
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // A probe never waits on a backend: answered at once while Kubo is down.
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(&stack, Some("GoogleHC/1.0")).status, 503);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "20 probes took {:?}", t.elapsed());

    stack.kubo.restart();
    let (a, _) = wait_for(&stack, 200, Duration::from_secs(10));
    assert_eq!((a.status, a.text().as_str()), (200, OK), "not healthy again after Kubo came back");
    assert!(stack.take_seen().iter().all(|(_, s)| s.target != "/"), "a probe reached a backend");
}
