//! Harness for the end-to-end tests: a real Envoy started from the
//! repository's own configuration, raw HTTP/1.1 exchanges with it, and the
//! upload bodies real clients send.

pub mod cases;
pub mod edge;
pub mod envoy;
pub mod envoy_config;
pub mod h2;
pub mod http;
pub mod load;
pub mod ok_backend;
pub mod real;
pub mod recorder;
pub mod sink;
pub mod stack;
pub mod upload;
pub mod values;

use std::path::PathBuf;

/// The repository root (tests run with the package as working directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Where `cargo build --release --target wasm32-wasip1` put the filters:
/// `EDGE_WASM_DIR`, else `$CARGO_TARGET_DIR/wasm32-wasip1/release`, else the
/// workspace's `target/`.
pub fn wasm_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("EDGE_WASM_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    target.join("wasm32-wasip1/release")
}
