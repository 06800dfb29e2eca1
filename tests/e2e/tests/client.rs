//! The real JavaScript client, kubo-rpc-client (npm), gets the same results
//! and the same progress callbacks through the real cluster and the filter
//! (manifests/envoy/envoy.yaml) as from the real Kubo. The case is
//! `e2e::cases::client`, shared with tests/gateway.

use e2e::real::RealStack;

#[test]
fn kubo_rpc_client_cannot_tell_cluster_from_kubo() {
    e2e::cases::client::kubo_rpc_client_cannot_tell_cluster_from_kubo(&RealStack::start(None));
}

#[test]
fn without_the_filter_the_client_sees_the_cluster() {
    e2e::cases::client::without_the_filter_the_client_sees_the_cluster();
}
