//! The real JavaScript client, kubo-rpc-client (npm, tests/node), gets the same results and
//! the same progress callbacks through the real cluster and the edge as from the real Kubo.

use std::path::Path;
use std::process::Command;

use super::Edge;

/// What `node add.mjs URL` reports (JSON), trusting `ca` (a PEM file) besides Node's own CAs.
fn run_client(url: &str, ca: Option<&Path>) -> serde_json::Value {
    let dir = crate::repo_root().join("tests/node");
    assert!(dir.join("node_modules/kubo-rpc-client").exists(), "tests/node/node_modules missing: ./x setup installs it");
    // Bounded: a client that hangs fails the test instead of stalling CI.
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "node", "add.mjs", url]).current_dir(&dir);
    if let Some(ca) = ca {
        cmd.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let out = cmd.output().expect("node");
    assert!(out.status.success(), "node add.mjs {url} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("client report is JSON")
}

pub fn kubo_rpc_client_cannot_tell_cluster_from_kubo(edge: &dyn Edge) {
    let local = |port: u16| format!("http://127.0.0.1:{port}");
    let kubo = run_client(&local(super::kubo()), None);
    let through = run_client(&edge.url(), edge.ca_file().as_deref());
    // The report must carry real values, or equality proves nothing.
    assert!(kubo["unnamed"]["size"].is_u64(), "{kubo}");
    assert!(kubo["unnamedProgress"].as_array().is_some_and(|p| p.len() > 3), "{kubo}");
    assert!(kubo["error"]["error"].as_str().is_some_and(|e| e.contains("chunker size must be greater than 0")), "{kubo}");
    assert_eq!(kubo, through, "kubo-rpc-client saw a difference\n[kubo]\n{kubo:#}\n[cluster+edge at {}]\n{through:#}", edge.url());
}

/// Without the filter the client does see the cluster (NaN sizes, empty paths), or the
/// equality above proves nothing. A property of the cluster, not of an edge: tests/e2e runs it.
pub fn without_the_filter_the_client_sees_the_cluster() {
    let local = |port: u16| format!("http://127.0.0.1:{port}");
    let kubo = run_client(&local(super::kubo()), None);
    let bare = run_client(&local(crate::real::cluster().peers[0].ports.proxy), None);
    assert!(kubo["unnamed"]["size"].is_u64(), "{kubo}");
    assert_ne!(kubo, bare);
}
