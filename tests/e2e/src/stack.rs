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
    let mut patches = vec![
        Patch("port_value: 9095", format!("port_value: {cluster}")),
        Patch("port_value: 5001", format!("port_value: {kubo}")),
    ];
    if filters {
        patches.push(Patch("value: \"{}\"", format!("value: {}", serde_quote(json))));
        Envoy::start("manifests/envoy/envoy.yaml", &patches)
    } else {
        Envoy::start_without_filters("manifests/envoy/envoy.yaml", &patches)
    }
}

/// A YAML double-quoted scalar.
fn serde_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
