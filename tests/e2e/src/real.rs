//! The add stack in front of the real daemons: one local cluster
//! (tests/localcluster: real Kubo and ipfs-cluster peers) per test binary,
//! started on first use, and a real Envoy running manifests/envoy/envoy.yaml
//! in front of peer 0. The reference for every answer is peer 0's own Kubo,
//! asked directly: the Kubo the cluster peer adds through.

use std::sync::OnceLock;

use localcluster::Cluster;

use crate::envoy::Envoy;
use crate::http::Response;

/// Peers of the test cluster: the default of the deployer's cluster shape.
pub const PEERS: usize = 3;

/// The test binary's local cluster. It is never dropped (a `static`): its
/// daemons stop when the test binary exits, by their guards.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| localcluster::start(PEERS).unwrap_or_else(|e| panic!("local cluster: {e}")))
}

pub struct RealStack {
    pub envoy: Envoy,
    pub cluster: &'static Cluster,
}

impl RealStack {
    /// Envoy with the filters in front of peer 0; `config`: the add_response
    /// plugin configuration, `None` for `{}` (the filter's defaults, whose
    /// `Server` must then be the real Kubo's).
    pub fn start(config: Option<&str>) -> RealStack {
        let cluster = cluster();
        let p = &cluster.peers[0];
        let envoy = crate::stack::envoy_in_front_of(p.ports.proxy, p.ports.kubo_rpc, config.unwrap_or("{}"), true);
        RealStack { envoy, cluster }
    }

    /// Peer 0's Kubo RPC port.
    pub fn kubo(&self) -> u16 {
        self.cluster.peers[0].ports.kubo_rpc
    }

    /// Peer 0's cluster proxy port.
    pub fn proxy(&self) -> u16 {
        self.cluster.peers[0].ports.proxy
    }

    /// The same request to Kubo directly and to the cluster through Envoy
    /// and the filter.
    pub fn both(&self, request: &[u8]) -> (Response, Response) {
        let kubo = crate::http::exchange(self.kubo(), request).expect("Kubo answers");
        let edge = crate::http::exchange(self.envoy.port, request).expect("Envoy answers");
        (kubo, edge)
    }

    /// Whether the cluster's pin set (REST `/pins`) holds `cid`.
    pub fn cluster_pins(&self, cid: &str) -> bool {
        self.cluster.pins().expect("REST /pins").iter().any(|p| p["cid"].as_str() == Some(cid))
    }

    /// Whether peer 0's Kubo has `cid` pinned (`pin/ls`).
    pub fn kubo_pins(&self, cid: &str) -> bool {
        let (status, body) = localcluster::http(self.cluster.peers[0].kubo_rpc(), "POST", &format!("/api/v0/pin/ls?arg={cid}"), None).expect("Kubo pin/ls");
        status == 200 && String::from_utf8_lossy(&body).contains(cid)
    }
}
