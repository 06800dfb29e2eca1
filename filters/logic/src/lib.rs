//! Plain-Rust logic of the edge filters. Nothing here touches the proxy-wasm
//! ABI, so every module is tested with `cargo test` on the host and with
//! `wasm-bindgen-test` on wasm32; the `cdylib` crates beside this one only
//! move bytes between Envoy and these functions.
//!
//! The three filters follow one layout. Per filter a module here
//! (`add`, `health`, `router`) with its configuration type read by
//! `from_json` (`AddConfig`, `HealthConfig`, the router's `Policy`); facts
//! two filters share in their own module (`backend`: the routing mark;
//! `kubo`: Kubo's answers; `gojson`: Go's JSON strings). In each cdylib a
//! `<Filter>Root` root context that reports a host error or a refused
//! configuration in Envoy's log and refuses to start, and a `<Filter>Http`
//! per-request context. Tests of one module's own functions sit beside it
//! (`#[cfg(test)] mod tests`); tests of what a filter does with a request
//! sit in `tests/<filter>.rs`. Non-test code never unwraps, expects or
//! panics (clippy denies it): a filter must not abort its VM on any input.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod add;
pub mod backend;
pub mod gojson;
pub mod gourl;
pub mod health;
pub mod kubo;
pub mod metrics;
pub mod path;
pub mod plugin_config;
pub mod router;
