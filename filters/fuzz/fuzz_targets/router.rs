//! Router path normalisation and classification (`router::target`,
//! `router::classify`): `METHOD\nPATH\n` then header lines, judged under the
//! hostile corpus's policy and under a second one (field-notes preset, all
//! RPC through the cluster proxy, Authorization forwarded, more health and
//! platform paths). Properties:
//! - the decision does not change under spellings that normalise to the
//!   same path: unreserved characters percent-encoded, escapes in the other
//!   hex case, doubled or trailing slashes, absolute-form with any host;
//! - decoded segments never hold `/`, `.` or `..`;
//! - refusals are 400, 401, 403, 404 or 405 and their answers build; a
//!   routed request loses its Authorization unless the policy forwards it.
#![no_main]

use std::sync::OnceLock;

use edge_fuzz::{reencode, RouterInput, Rng};
use edge_logic::router::{classify, parse_target, refusal_response, Decision, Policy, Request};
use libfuzzer_sys::fuzz_target;

const CORPUS_CONFIG: &str = include_str!("../../logic/tests/corpus/router-config.json");
const OTHER_CONFIG: &str = r#"{"preset":"field-notes","kubo_direct":false,"forward_authorization":true,
  "rpc":{"pin/ls":"credential","dag/export":"public","version":"public"},"rest":{"GET /pins":"credential"},
  "health_paths":["/","/healthz","/api/v0/id"],"platform_paths":["/.well-known/acme-challenge/","/status"],
  "credentials":{"bearer_tokens":["corpus-token-0123456789"],"basic":{"alice":"wonderland-42"}}}"#;

fn policies() -> &'static [Policy; 2] {
    static P: OnceLock<[Policy; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let p = |c: &str| Policy::from_json(c.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        [p(CORPUS_CONFIG), p(OTHER_CONFIG)]
    })
}

/// Another spelling of `raw` that reaches the same decoded path and query.
fn respell(raw: &[u8], rng: &mut Rng) -> Vec<u8> {
    // An absolute-form target keeps its scheme and authority as they are.
    let scheme = [&b"http://"[..], b"https://"].into_iter().find(|s| raw.len() >= s.len() && raw[..s.len()].eq_ignore_ascii_case(s));
    if let Some(s) = scheme {
        let at = raw[s.len()..].iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).map_or(raw.len(), |i| s.len() + i);
        let mut v = raw[..at].to_vec();
        let rest = respell_origin(&raw[at..], rng);
        v.extend_from_slice(&rest);
        return v;
    }
    let mut p = respell_origin(raw, rng);
    if p.starts_with(b"/") && rng.one_in(3) {
        let host: &[u8] = [&b"http://ipfs.example.org"[..], b"HTTPS://127.0.0.1:8443", b"http://a@b"][rng.below(3)];
        let mut abs = host.to_vec();
        abs.extend_from_slice(&p);
        p = abs;
    }
    p
}

fn respell_origin(raw: &[u8], rng: &mut Rng) -> Vec<u8> {
    let (path, query) = match raw.iter().position(|&b| b == b'?') {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    let mut p = reencode(path, rng);
    // Only an origin-form path: `http:/x` doubled would become absolute-form.
    if p.starts_with(b"/") && rng.one_in(2) {
        // Double one slash, or add a trailing one.
        let slashes: Vec<usize> = p.iter().enumerate().filter(|(_, &b)| b == b'/').map(|(i, _)| i).collect();
        if !slashes.is_empty() && rng.one_in(2) {
            p.insert(slashes[rng.below(slashes.len())], b'/');
        } else if !p.ends_with(b"/") {
            p.push(b'/');
        }
    }
    if let Some(q) = query {
        p.extend_from_slice(&reencode(q, rng));
    }
    p
}

fuzz_target!(init: edge_fuzz::init("router"), |data: &[u8]| {
    let Some(input) = RouterInput::decode(data) else { return };
    let headers: Vec<(&str, &[u8])> = input.headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut rng = Rng::from_input(data);

    if let Ok(t) = parse_target(input.path) {
        for s in &t.segments {
            assert!(!s.is_empty() && !s.contains('/') && s != "." && s != "..", "segment {s:?}");
        }
    }
    let variants: Vec<Vec<u8>> = (0..4).map(|_| respell(input.path, &mut rng)).collect();
    for policy in policies() {
        let decide = |path: &[u8]| classify(policy, &Request { method: input.method, path, headers: &headers });
        let d = decide(input.path);
        match &d {
            Decision::Route { strip_authorization, .. } => assert_eq!(*strip_authorization, !policy.forward_authorization),
            Decision::Refuse(r) => {
                assert!(matches!(r.status, 400 | 401 | 403 | 404 | 405), "{r:?}");
                let _ = refusal_response(policy, r);
            }
            Decision::Platform => {}
        }
        for v in &variants {
            assert_eq!(
                decide(v),
                d,
                "{} {:?} and {:?} decided differently",
                input.method,
                String::from_utf8_lossy(input.path),
                String::from_utf8_lossy(v)
            );
        }
    }
});
