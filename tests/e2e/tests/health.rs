//! The health filter in a real Envoy (manifests/envoy/envoy.yaml, all three
//! filters) in front of the real daemons of a local cluster peer, through a
//! recording tap each: passive answers that never touch a backend and active
//! mode with a backend (its tap) stopped and restarted (`e2e::cases::health`,
//! shared with tests/gateway), and agent mode.

use e2e::cases::health;
use e2e::edge::{Answer, EdgeStack, Req};

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
    health::passive_answers_probes_without_touching_a_backend(&EdgeStack::start(r#"{"preset": "read-only"}"#, health::PASSIVE));
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

#[test]
fn active_mode_follows_a_backend_killed_and_restarted() {
    health::active_mode_follows_a_backend_killed_and_restarted(&EdgeStack::start(r#"{"preset": "read-only"}"#, &health::active(None)));
}
