//! The deployer's Envoy Gateway objects, translated by the real Envoy Gateway (standalone
//! mode: File provider, Host infrastructure) and tested through the Envoy it configures.
//! See README.md beside this crate.

pub mod compare;
pub mod eg;
pub mod files;
pub mod ns;
pub mod render;
pub mod status;
pub mod tls;
