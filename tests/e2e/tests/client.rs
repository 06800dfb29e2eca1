//! The real JavaScript client, kubo-rpc-client (npm), gets the same results
//! and the same progress callbacks through the real cluster and the filter as
//! from the real Kubo.

use std::process::Command;

use e2e::real::RealStack;

fn run_client(port: u16) -> serde_json::Value {
    let dir = e2e::repo_root().join("tests/node");
    assert!(dir.join("node_modules/kubo-rpc-client").exists(), "tests/node/node_modules missing: ./x setup installs it");
    // Bounded: a client that hangs fails the test instead of stalling CI.
    let out = Command::new("timeout").args(["120", "node", "add.mjs"]).arg(format!("http://127.0.0.1:{port}")).current_dir(&dir).output().expect("node");
    assert!(out.status.success(), "node add.mjs failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("client report is JSON")
}

#[test]
fn kubo_rpc_client_cannot_tell_cluster_from_kubo() {
    let stack = RealStack::start(None);
    let kubo = run_client(stack.kubo());
    let edge = run_client(stack.envoy.port);
    // The report must carry real values, or equality proves nothing.
    assert!(kubo["unnamed"]["size"].is_u64(), "{kubo}");
    assert!(kubo["unnamedProgress"].as_array().is_some_and(|p| p.len() > 3), "{kubo}");
    assert!(kubo["error"]["error"].as_str().is_some_and(|e| e.contains("chunker size must be greater than 0")), "{kubo}");
    assert_eq!(kubo, edge, "kubo-rpc-client saw a difference\n[kubo]\n{kubo:#}\n[cluster+filter]\n{edge:#}");
    // Without the filter the client does see the cluster (NaN sizes, empty paths).
    let bare = run_client(stack.proxy());
    assert_ne!(kubo, bare);
}
