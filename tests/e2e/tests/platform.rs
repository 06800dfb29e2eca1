//! The router's `platform_paths` in a real Envoy (manifests/envoy/envoy.yaml,
//! all three filters): a request under one is left unmarked, so the route
//! the platform attached answers it, and nothing that only spells its way
//! into such a path gets anywhere else.
//!
//! The platform's route is a direct answer put before the manifest's
//! unmarked routes: it stands for the route cert-manager's HTTP-01 solver
//! attaches (cert-manager itself needs a Kubernetes cluster and an ACME
//! server, which these tests do not run). The filters are turned on for it,
//! as for a route under filters on the whole listener (a Gateway-wide policy
//! left from an older version during an upgrade, a hand-made one): the case
//! `platform_paths` is for. The deployed routes give a platform's route no
//! filter at all.

use e2e::edge::{EdgeStack, Req};
use e2e::envoy::Patch;

const SOLVER: &str = r#"
match: { prefix: /.well-known/acme-challenge/ }
direct_response: { status: 200, body: { inline_string: "solver answer" } }
typed_per_filter_config:
  health: { "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: {} }
  router: { "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: {} }
  add_response: { "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: {} }
"#;

fn stack(router: &str) -> EdgeStack {
    EdgeStack::start_patched(router, "{}", vec![Patch::RouteBeforeUnmarked(SOLVER.into())])
}

#[test]
fn a_platform_path_reaches_the_platforms_route_and_nothing_else() {
    let stack = stack("{}");
    let get = |target: &str| stack.send(&Req::new("GET", target)).unwrap_or_else(|e| panic!("{target}: {e}"));

    let a = get("/.well-known/acme-challenge/Xr4-token_9");
    assert_eq!((a.status, a.text().as_str()), (200, "solver answer"));
    // A client's mark is still removed: with it the request would match
    // the `rest` route, which comes first.
    let a = stack.send(&Req::new("GET", "/.well-known/acme-challenge/t").header("x-ipfs-edge-backend", "rest")).unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "solver answer"));
    assert!(stack.take_seen().is_empty(), "a platform path reached a backend");

    // Out of the prefix by dot segments or escapes: the router refuses.
    for target in ["/.well-known/acme-challenge/../../api/v0/shutdown", "/.well-known/acme-challenge/%2e%2e/%2e%2e/pins", "/.well-known/acme-challenge%2F..%2Fid"] {
        let a = get(target);
        assert_eq!(a.status, 400, "{target}: {}", a.text());
    }
    // Into it only once decoded: the router leaves it unmarked, but the
    // platform's route (matching the raw path) does not take it, and the
    // route table refuses what is unmarked.
    let a = get("/.well-known/%61cme-challenge/t");
    assert_eq!(a.status, 403, "{}", a.text());
    // Beside the prefix: the router's own answer.
    assert_eq!(get("/.well-known/acme-challenge-x/t").status, 404);
    assert!(stack.take_seen().is_empty());
}

#[test]
fn without_platform_paths_the_router_refuses_them() {
    let stack = stack(r#"{"platform_paths": []}"#);
    let a = stack.send(&Req::new("GET", "/.well-known/acme-challenge/t")).unwrap();
    assert_eq!(a.status, 404, "{}", a.text());
    assert!(a.text().starts_with("{\"Message\":\"404 page not found\""), "{}", a.text());
}
