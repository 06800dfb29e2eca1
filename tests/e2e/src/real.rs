//! The add stack in front of the real daemons: one local cluster
//! (tests/localcluster: real Kubo and ipfs-cluster peers) per test binary,
//! started on first use, and a real Envoy running manifests/envoy/envoy.yaml
//! in front of peer 0. The reference for every answer is peer 0's own Kubo,
//! asked directly: the Kubo the cluster peer adds through.

use std::sync::OnceLock;

use localcluster::Cluster;

use crate::cases::Edge;
use crate::edge::Proto;
use crate::envoy::Envoy;

/// Peers of the test cluster: the default of the deployer's cluster shape.
pub const PEERS: usize = 3;

/// The test binary's local cluster. It is never dropped (a `static`): its
/// daemons stop when the test binary exits, by their guards.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| localcluster::start(PEERS).unwrap_or_else(|e| panic!("local cluster: {e}")))
}

/// Whether the cluster's pin set (REST `/pins` of peer 0) holds `cid`.
pub fn cluster_pins(cid: &str) -> bool {
    cluster().pins().expect("REST /pins").iter().any(|p| p["cid"].as_str() == Some(cid))
}

/// Whether peer 0's Kubo has `cid` pinned (`pin/ls`).
pub fn kubo_pins(cid: &str) -> bool {
    let (status, body) = localcluster::http(cluster().peers[0].kubo_rpc(), "POST", &format!("/api/v0/pin/ls?arg={cid}"), None).expect("Kubo pin/ls");
    status == 200 && String::from_utf8_lossy(&body).contains(cid)
}

pub struct RealStack {
    pub envoy: Envoy,
    pub cluster: &'static Cluster,
    max_upload_bytes: u64,
}

impl RealStack {
    /// Envoy with the filters in front of peer 0; `config`: the add_response
    /// plugin configuration, `None` for `{}` (the filter's defaults, whose
    /// `Server` must then be the real Kubo's).
    pub fn start(config: Option<&str>) -> RealStack {
        let cluster = cluster();
        let p = &cluster.peers[0];
        let json = config.unwrap_or("{}");
        let max_upload_bytes = serde_json::from_str::<serde_json::Value>(json).ok().and_then(|v| v["max_upload_bytes"].as_u64()).unwrap_or(0);
        let envoy = crate::stack::envoy_in_front_of(p.ports.proxy, p.ports.kubo_rpc, json, true);
        RealStack { envoy, cluster, max_upload_bytes }
    }
}

/// manifests/envoy/envoy.yaml as the edge under test: its one listener speaks HTTP/1 and h2c.
impl Edge for RealStack {
    fn port(&self, _: Proto) -> u16 {
        self.envoy.port
    }

    fn host(&self) -> String {
        "127.0.0.1".into()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.port)
    }

    fn ca_file(&self) -> Option<std::path::PathBuf> {
        None
    }

    fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    fn log(&self) -> String {
        self.envoy.log()
    }
}
