//! Built-in knowledge of the backends: which RPC commands the cluster proxy
//! handles itself, which take CID arguments, the cluster REST routes of
//! ipfs-cluster v1.1.6 (api/rest/restapi.go) and the policy presets.

use super::config::Access;

/// Commands ipfs-cluster v1.1.6's IPFS proxy intercepts (api/ipfsproxy
/// ipfsproxy.go); every other command it forwards to Kubo unchanged, so
/// those can go to Kubo directly.
pub const PROXY_COMMANDS: &[&str] = &[
    "add",
    "pin/add",
    "pin/rm",
    "pin/ls",
    "pin/update",
    "repo/stat",
    "repo/gc",
    "block/put",
    "dag/put",
];

/// Commands whose `arg` values are CIDs or /ipfs, /ipns, /ipld paths;
/// these are checked at the edge.
pub const CID_ARG_COMMANDS: &[&str] = &[
    "pin/add",
    "pin/rm",
    "pin/ls",
    "pin/update",
    "cat",
    "get",
    "ls",
    "refs",
    "block/get",
    "block/stat",
    "block/rm",
    "dag/get",
    "dag/stat",
    "dag/export",
    "dag/resolve",
    "object/data",
    "object/get",
];

/// Preset `read-only` (the default): reads for everyone, the writes the
/// cluster knows (add, pinning, block/dag put, gc) with a credential.
pub const PRESET_READ_ONLY: &[(&str, Access)] = &[
    ("version", Access::Public),
    ("cat", Access::Public),
    ("get", Access::Public),
    ("ls", Access::Public),
    ("block/get", Access::Public),
    ("block/stat", Access::Public),
    ("dag/get", Access::Public),
    ("dag/stat", Access::Public),
    ("dag/resolve", Access::Public),
    ("resolve", Access::Public),
    ("name/resolve", Access::Public),
    ("pin/ls", Access::Public),
    ("repo/stat", Access::Public),
    ("add", Access::Credential),
    ("pin/add", Access::Credential),
    ("pin/rm", Access::Credential),
    ("pin/update", Access::Credential),
    ("block/put", Access::Credential),
    ("dag/put", Access::Credential),
    ("repo/gc", Access::Credential),
];

/// Preset `field-notes`: the public set of the original deployment notes
/// (add, block, get, dag/put, object/data, object/get), open to anyone; the
/// notes paired it with 100 requests a minute per client, which is Envoy's
/// job (local_ratelimit / ratelimit filter), not this filter's. `block` is
/// taken as block/get, block/stat and block/put: block/rm deletes data.
pub const PRESET_FIELD_NOTES: &[(&str, Access)] = &[
    ("add", Access::Public),
    ("block/get", Access::Public),
    ("block/stat", Access::Public),
    ("block/put", Access::Public),
    ("get", Access::Public),
    ("dag/put", Access::Public),
    ("object/data", Access::Public),
    ("object/get", Access::Public),
];

/// One path element of a REST route pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Lit(&'static str),
    /// A CID, checked with the `cid` crate.
    Cid,
    /// Any one segment (peer ID, metric name).
    Any,
    /// `ipfs`, `ipns` or `ipld`, followed by at least one more segment.
    KeyTypeRest,
}

pub struct RestRoute {
    /// Configuration key: `"METHOD /pattern"`.
    pub key: &'static str,
    pub method: &'static str,
    pub pattern: &'static [Seg],
    pub default: Access,
}

use Seg::*;

macro_rules! route {
    ($key:literal, $m:literal, [$($s:expr),*], $a:expr) => {
        RestRoute { key: $key, method: $m, pattern: &[$($s),*], default: $a }
    };
}

/// The REST API of ipfs-cluster v1.1.6. Writes need a credential; peer set
/// changes and token issuing are off unless configured.
pub const REST_ROUTES: &[RestRoute] = &[
    route!("GET /id", "GET", [Lit("id")], Access::Public),
    route!("GET /version", "GET", [Lit("version")], Access::Public),
    route!("GET /peers", "GET", [Lit("peers")], Access::Public),
    route!("POST /peers", "POST", [Lit("peers")], Access::Deny),
    route!("DELETE /peers/{peer}", "DELETE", [Lit("peers"), Any], Access::Deny),
    route!("POST /add", "POST", [Lit("add")], Access::Credential),
    route!("GET /allocations", "GET", [Lit("allocations")], Access::Public),
    route!("GET /allocations/{cid}", "GET", [Lit("allocations"), Cid], Access::Public),
    route!("GET /pins", "GET", [Lit("pins")], Access::Public),
    route!("POST /pins/{cid}/recover", "POST", [Lit("pins"), Cid, Lit("recover")], Access::Credential),
    route!("POST /pins/recover", "POST", [Lit("pins"), Lit("recover")], Access::Credential),
    route!("GET /pins/{cid}", "GET", [Lit("pins"), Cid], Access::Public),
    route!("POST /pins/{cid}", "POST", [Lit("pins"), Cid], Access::Credential),
    route!("POST /pins/{keyType}/{path}", "POST", [Lit("pins"), KeyTypeRest], Access::Credential),
    route!("DELETE /pins/{cid}", "DELETE", [Lit("pins"), Cid], Access::Credential),
    route!("DELETE /pins/{keyType}/{path}", "DELETE", [Lit("pins"), KeyTypeRest], Access::Credential),
    route!("POST /ipfs/gc", "POST", [Lit("ipfs"), Lit("gc")], Access::Credential),
    route!("GET /health/graph", "GET", [Lit("health"), Lit("graph")], Access::Public),
    route!("GET /health/alerts", "GET", [Lit("health"), Lit("alerts")], Access::Public),
    route!("GET /health/bandwidth", "GET", [Lit("health"), Lit("bandwidth")], Access::Public),
    route!("GET /monitor/metrics/{name}", "GET", [Lit("monitor"), Lit("metrics"), Any], Access::Public),
    route!("GET /monitor/metrics", "GET", [Lit("monitor"), Lit("metrics")], Access::Public),
    route!("POST /token", "POST", [Lit("token")], Access::Deny),
    route!("GET /health", "GET", [Lit("health")], Access::Public),
];
