//! Plain-Rust logic of the edge filters. Nothing here touches the proxy-wasm
//! ABI, so every module is tested with `cargo test` on the host and with
//! `wasm-bindgen-test` on wasm32; the `cdylib` crates beside this one only
//! move bytes between Envoy and these functions.

pub mod add;
pub mod gourl;
pub mod plugin_config;
pub mod health;
pub mod router;
