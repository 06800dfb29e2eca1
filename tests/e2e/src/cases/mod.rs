//! The end-to-end cases that hold for any edge in front of the real daemons, written once and
//! run against each edge under test: `manifests/envoy/envoy.yaml` in a real Envoy
//! (tests/e2e/tests) and the configuration Envoy Gateway generated from the deployer's
//! objects (tests/gateway). An edge is reached through [`Edge`]: a local plain-text port per
//! protocol, the host name it serves, the URL and CA a real client is given. Behind it is
//! peer 0 of the test binary's local cluster ([`crate::real::cluster`]), whose own Kubo is the
//! reference for every answer.
//!
//! Each case panics with what differed, as a `#[test]` does.

pub mod add;
pub mod client;
pub mod health;
pub mod streaming;

use std::path::PathBuf;

use crate::edge::Proto;
use crate::http::Response;

/// The edge under test.
pub trait Edge: Sync {
    /// A port on 127.0.0.1 where a plain-text client reaches the edge over `proto`: Envoy's
    /// own listener, or a door carrying each connection over TLS to an HTTPS listener.
    fn port(&self, proto: Proto) -> u16;
    /// The host name the edge serves (the `Host` the cases send).
    fn host(&self) -> String;
    /// The base URL a real client (kubo-rpc-client) is given.
    fn url(&self) -> String;
    /// The CA certificates (PEM file) that client must trust for [`Edge::url`], if HTTPS.
    fn ca_file(&self) -> Option<PathBuf>;
    /// The add filter's `max_upload_bytes` on this edge (0: none).
    fn max_upload_bytes(&self) -> u64;
    /// The edge's log, for failure messages.
    fn log(&self) -> String;

    /// `method target` with `body`, as clients send it, for this edge's host.
    fn request(&self, method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        crate::http::request_to(&self.host(), method, target, content_type, body)
    }

    /// One complete HTTP/1.1 exchange with the edge.
    fn exchange(&self, request: &[u8]) -> Response {
        crate::http::exchange(self.port(Proto::Http11), request).unwrap_or_else(|e| panic!("the edge answers: {e}\n{}", tail(&self.log(), 40)))
    }
}

/// Peer 0's Kubo RPC port: the reference every add answer is compared with.
pub fn kubo() -> u16 {
    crate::real::cluster().peers[0].ports.kubo_rpc
}

/// The same request to Kubo directly and to the cluster through the edge.
pub fn both(edge: &dyn Edge, request: &[u8]) -> (Response, Response) {
    let kubo = crate::http::exchange(kubo(), request).expect("Kubo answers");
    (kubo, edge.exchange(request))
}

/// The `Hash` of an add answer's last event.
pub fn cid_of(r: &Response) -> String {
    let last = r.lines().last().cloned().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {}", r.semantic()));
    v["Hash"].as_str().unwrap_or_else(|| panic!("no Hash: {}", r.semantic())).to_string()
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
