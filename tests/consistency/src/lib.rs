//! Reading the files the consistency tests compare, from the repository
//! root, and the comparison itself, so that `tests/` only states which
//! facts must agree.

pub mod callbacks;
pub mod routes;

use std::path::PathBuf;

/// The repository root (this crate is `tests/consistency`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A repository file as text.
pub fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(repo_root().join(path)).map_err(|e| format!("{path}: {e}"))
}
