//! The add stack under test: the Kubo and ipfs-cluster stand-ins, and a real
//! Envoy running manifests/envoy/envoy.yaml in front of them.

use std::net::SocketAddr;
use std::sync::Arc;

use standins::{Kind, Server, StandinState};

use crate::envoy::{Envoy, Patch};

pub struct AddStack {
    pub envoy: Envoy,
    pub kubo: SocketAddr,
    pub cluster: SocketAddr,
    pub kubo_state: Arc<StandinState>,
    pub cluster_state: Arc<StandinState>,
}

impl AddStack {
    /// `config`: the add_response plugin configuration to run with, or
    /// `None` for `{}` with the `Server` header of the stand-in's Kubo.
    pub fn start(config: Option<&str>) -> AddStack {
        let kubo = Server::bind("127.0.0.1:0", Kind::Kubo, 0).expect("bind kubo stand-in");
        let (kubo, kubo_state) = kubo.spawn();
        let cluster = Server::bind_with("127.0.0.1:0", Kind::Cluster, 0, kubo.port()).expect("bind cluster stand-in");
        let (cluster, cluster_state) = cluster.spawn();
        let default = format!("{{\"server\":\"kubo/{}\"}}", standins::kubo::KUBO_VERSION);
        let json = config.map(str::to_string).unwrap_or(default);
        let envoy = envoy_in_front_of(cluster.port(), kubo.port(), &json, true);
        AddStack { envoy, kubo, cluster, kubo_state, cluster_state }
    }

    /// The same request to Kubo directly and to the cluster through Envoy
    /// and the filter.
    pub fn both(&self, request: &[u8]) -> (crate::http::Response, crate::http::Response) {
        let kubo = crate::http::exchange(self.kubo.port(), request).expect("kubo stand-in answers");
        let edge = crate::http::exchange(self.envoy.port, request).expect("envoy answers");
        (kubo, edge)
    }
}

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
