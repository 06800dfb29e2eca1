//! `edge-trim DIR`: removes from each filter's `.wasm` in DIR the Proxy-Wasm
//! callbacks that filter does not implement.
//!
//! Why: the `proxy-wasm` SDK exports every callback of the ABI, and the host
//! (proxy-wasm-cpp-host, inside Envoy and Istio) enters the VM for every
//! exported one on every stream, even when the SDK then runs an empty default.
//! The host checks for each export before calling it (`src/context.cc`:
//! `if (!wasm_->on_response_headers_...) return Continue;`), so a callback
//! that is not exported costs nothing. A health probe then pays for context
//! creation, request headers and delete, not for response headers, response
//! body, log and done it never looks at; a 1 GiB upload passing the router
//! no longer enters its VM once per body chunk.
//!
//! Each filter names the callbacks it implements in its `Cargo.toml`:
//!
//! ```toml
//! [package.metadata.proxy-wasm]
//! callbacks = ["proxy_on_request_headers"]
//! ```
//!
//! Removing an export changes nothing else in the module, so an untrimmed
//! build behaves the same, only slower. Rerunning on a trimmed file is a no-op.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use edge_trim::trim;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: edge-trim DIR\n\nDIR holds the filters' .wasm files (target/wasm32-wasip1/release).");
        exit(2);
    };
    let filters = match filters() {
        Ok(f) => f,
        Err(e) => fail(&e),
    };
    if filters.is_empty() {
        fail("no workspace package has [package.metadata.proxy-wasm] callbacks");
    }
    for (name, keep) in filters {
        let path = Path::new(dir).join(format!("{name}.wasm"));
        let wasm = std::fs::read(&path).unwrap_or_else(|e| fail(&format!("{}: {e} (build the filters first)", path.display())));
        match trim(&wasm, &keep) {
            Ok(None) => {}
            Ok(Some(edge_trim::Trimmed { wasm: out, dropped })) => {
                std::fs::write(&path, out).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
                eprintln!("{}: {} unused callbacks no longer exported", path.display(), dropped.len());
            }
            Err(e) => fail(&format!("{}: {e}", path.display())),
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("edge-trim: {msg}");
    exit(1)
}

/// (library name, callbacks it implements) for every workspace package that
/// declares them, from `cargo metadata`.
fn filters() -> Result<Vec<(String, BTreeSet<String>)>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // `cargo run` sets CARGO_MANIFEST_DIR for the program it runs: read it then,
    // not at compile time, since a target directory shared by two checkouts
    // keeps one build whose compile-time path names the other checkout.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let manifest = dir.join("../../Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let mut found = Vec::new();
    for pkg in meta["packages"].as_array().into_iter().flatten() {
        let Some(list) = pkg["metadata"]["proxy-wasm"].get("callbacks") else {
            continue;
        };
        let name = pkg["name"].as_str().unwrap_or_default().replace('-', "_");
        let keep = list
            .as_array()
            .and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect::<Option<BTreeSet<_>>>())
            .ok_or_else(|| format!("package {name}: metadata.proxy-wasm.callbacks must be a list of export names"))?;
        found.push((name, keep));
    }
    Ok(found)
}

