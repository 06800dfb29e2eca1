//! The add filter's plugin configuration (Envoy `configuration`, Envoy
//! Gateway `config`, Istio `pluginConfig`): one JSON object, every key
//! optional. Unknown keys and wrong types are refused, naming the key.

use serde::Deserialize;

/// Kubo's version as the `Server` header names it. Keep in step with the
/// Kubo image the deployer runs (manifests/), which passes it explicitly.
pub const DEFAULT_SERVER: &str = "kubo/0.42.0";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddConfig {
    /// Longest response line rewritten (bytes), and so the most the filter
    /// keeps per response (a line cut between two chunks); a longer line
    /// passes unchanged.
    pub max_line_bytes: usize,
    /// `Server` header of rewritten answers; `""` leaves the cluster's.
    pub server: String,
    /// Value put in `x-ipfs-edge-backend` to send `only-hash` adds to Kubo;
    /// the route table maps it to the Kubo RPC cluster. `""` disables the
    /// detour (then only-hash adds are refused: the cluster would pin).
    pub only_hash_backend: String,
    /// Refuse Kubo options the cluster ignores but that change the CID
    /// (mode, mtime, inline, ...), rather than answer with another CID.
    pub refuse_unsupported_options: bool,
    /// Largest upload accepted, in bytes; `0`: no limit. Envoy (and Envoy
    /// Gateway) can only cap a body by buffering it, which large adds cannot
    /// afford; the filter counts bytes as they stream instead.
    pub max_upload_bytes: u64,
}

impl Default for AddConfig {
    fn default() -> Self {
        AddConfig {
            max_line_bytes: 16 * 1024,
            server: DEFAULT_SERVER.into(),
            only_hash_backend: "kubo".into(),
            refuse_unsupported_options: true,
            max_upload_bytes: 0,
        }
    }
}

impl AddConfig {
    /// Parses the plugin configuration; empty means defaults.
    pub fn from_json(bytes: &[u8]) -> Result<AddConfig, String> {
        let cfg: AddConfig = crate::plugin_config::parse("add_response", bytes)?;
        if cfg.max_line_bytes < 256 {
            return Err("add_response configuration key `max_line_bytes`: must be at least 256".into());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn empty_is_defaults() {
        assert_eq!(AddConfig::from_json(b"").unwrap(), AddConfig::default());
        assert_eq!(AddConfig::from_json(b" {} ").unwrap(), AddConfig::default());
    }

    #[test]
    fn keys_are_read() {
        let c = AddConfig::from_json(br#"{"max_line_bytes":1024,"server":"kubo/0.40.0"}"#).unwrap();
        assert_eq!((c.max_line_bytes, c.server.as_str()), (1024, "kubo/0.40.0"));
    }

    #[test]
    fn bad_keys_are_named() {
        let e = AddConfig::from_json(br#"{"max_line":1}"#).unwrap_err();
        assert!(e.contains("unknown field `max_line`"), "{e}");
        let e = AddConfig::from_json(br#"{"server":1}"#).unwrap_err();
        assert!(e.contains("key `server`: invalid type"), "{e}");
        let e = AddConfig::from_json(br#"{"max_line_bytes":10}"#).unwrap_err();
        assert!(e.contains("max_line_bytes"), "{e}");
    }
}
