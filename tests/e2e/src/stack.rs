//! manifests/envoy/envoy.yaml in front of given backend ports, as the add
//! tests (tests/e2e/src/real.rs), the sinks and the benchmarks start it.

use crate::envoy::{Envoy, Patch};

/// manifests/envoy/envoy.yaml with its backends at these ports and the
/// add_response configuration `json`; `filters: false` for the baseline.
pub fn envoy_in_front_of(cluster: u16, kubo: u16, json: &str, filters: bool) -> Envoy {
    let patches = patches(cluster, kubo, json, filters);
    if filters {
        Envoy::start("manifests/envoy/envoy.yaml", &patches)
    } else {
        Envoy::start_without_filters("manifests/envoy/envoy.yaml", &patches)
    }
}

/// manifests/envoy/envoy.yaml with add_response as its only Wasm filter
/// (configuration `json`): what the add benchmark compares with no filter.
pub fn envoy_with_add_response_only(cluster: u16, kubo: u16, json: &str) -> Envoy {
    let mut patches = patches(cluster, kubo, json, false);
    patches.push(Patch::FilterConfig("add_response", json.into()));
    Envoy::start_keeping("manifests/envoy/envoy.yaml", &patches, &["add_response"])
}

/// The patches that put manifests/envoy/envoy.yaml in front of these ports
/// with the add_response configuration `json`. The cluster REST API and the
/// gateway get a closed port: the add tests never reach them.
pub fn patches(cluster: u16, kubo: u16, json: &str, filters: bool) -> Vec<Patch> {
    let closed = closed_port();
    let mut patches = vec![
        Patch::ClusterPort("cluster_proxy", cluster),
        Patch::ClusterPort("kubo_rpc", kubo),
        Patch::ClusterPort("cluster_rest", closed),
        Patch::ClusterPort("gateway", closed),
    ];
    if filters {
        patches.push(Patch::FilterConfig("add_response", json.into()));
        patches.push(Patch::FilterConfig("router", ADD_ROUTER_CONFIG.into()));
    } else {
        // Nothing marks requests without the router: the baseline sends
        // what would be unmarked to the cluster proxy, as the add-only
        // manifest did.
        patches.push(Patch::UnmarkedTo("cluster_proxy"));
    }
    patches
}

/// The router configuration the add tests run with: the manifest's
/// read-only preset with `add` opened to everyone, so the same request
/// bytes go to Kubo and through the edge (a test setting).
pub const ADD_ROUTER_CONFIG: &str = r#"{"preset": "read-only", "rpc": {"add": "public"}}"#;

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}
