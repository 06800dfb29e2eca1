//! The cluster's own failures as a Kubo client sees them through the edge.

use e2e::http::request;
use e2e::upload::{body, content, content_type, Entry};

#[test]
fn kubo_behind_the_cluster_peer_stopped_then_back() {
    // A cluster of its own: this test stops a daemon.
    let mut cluster = localcluster::start(1).expect("local cluster");
    let p = cluster.peers[0].clone();
    let envoy = e2e::stack::envoy_in_front_of(p.ports.proxy, p.ports.kubo_rpc, "{}", true);
    let req = request("POST", "/api/v0/add", Some(&content_type()), &body(&[Entry::File("f", &content(5000, 31))]));
    let ok = e2e::http::exchange(envoy.port, &req).unwrap();
    assert_eq!(ok.status, 200);

    cluster.stop_kubo(0);
    // Kubo itself, down, answers nothing: the connection is refused.
    assert!(e2e::http::exchange(p.ports.kubo_rpc, &req).is_err());
    // Through the edge the cluster proxy still answers: 200, the events
    // with the CID it computed itself (ipfs-cluster v1.1.6 builds the DAG
    // before it stores a block), then the failure in the X-Stream-Error
    // trailer, which the filter passes. A client that ignores trailers
    // takes this for a stored add: README, "The cluster's failures".
    let edge = e2e::http::exchange(envoy.port, &req).unwrap();
    assert_eq!(edge.status, 200, "{}", edge.semantic());
    let trailer = edge.trailers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-stream-error")).map(|(_, v)| v.clone());
    assert!(trailer.as_deref().is_some_and(|v| v.contains("failed to put block")), "Kubo down, no stream error:\n{}", edge.semantic());
    assert_eq!(edge.lines(), ok.lines(), "the events are those of a working add");

    cluster.start_kubo(0).unwrap();
    let back = e2e::http::exchange(envoy.port, &req).unwrap();
    assert_eq!(back.semantic(), ok.semantic(), "after Kubo is back, the same add gives the same answer");
}
