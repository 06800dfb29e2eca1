//! Every `/api/v0/add` a client can send gets, through the cluster and the
//! filter, the answer Kubo gives (add-compat.md): the real Kubo and the real
//! ipfs-cluster (the versions of values.env), the same bytes to peer 0's
//! Kubo directly and to the cluster proxy through Envoy
//! (manifests/envoy/envoy.yaml), compared field by field. The cases are
//! `e2e::cases::add`, shared with tests/gateway (the same through the
//! configuration Envoy Gateway generates).

use e2e::cases::add;
use e2e::real::RealStack;

#[test]
fn add_through_the_cluster_answers_as_kubo() {
    add::answers_as_kubo(&RealStack::start(None));
}

#[test]
fn the_unfixed_cluster_is_told_apart() {
    add::the_unfixed_cluster_is_told_apart(&RealStack::start(None));
}

#[test]
fn only_hash_is_kubos_answer_and_pins_nothing() {
    add::only_hash_is_kubos_answer_and_pins_nothing(&RealStack::start(None));
}

#[test]
fn a_bad_configuration_is_refused_naming_the_key() {
    for (json, key) in [(r#"{"max_line":100}"#, "max_line"), (r#"{"server":7}"#, "server"), (r#"{"max_line_bytes":"big"}"#, "max_line_bytes")] {
        let patches = e2e::stack::patches(1, 1, json, true);
        match e2e::envoy::Envoy::try_start("manifests/envoy/envoy.yaml", &patches) {
            Ok(_) => panic!("{json} was accepted"),
            Err(log) => {
                let line = log.lines().find(|l| l.contains("add_response configuration")).unwrap_or_else(|| panic!("no log line for {json}:\n{log}"));
                assert!(line.contains(key), "{line}");
            }
        }
    }
}
