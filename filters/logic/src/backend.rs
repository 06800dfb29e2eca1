//! The routing mark: the request header the filters set and Envoy's route
//! table (manifests/envoy/envoy.yaml, manifests/kubernetes/edge/routes.yaml)
//! matches, and the backends it names.

/// The request header carrying the decision to the route table.
pub const BACKEND_HEADER: &str = "x-ipfs-edge-backend";

/// Where a marked request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Kubo's read-only HTTP gateway.
    Gateway,
    /// The ipfs-cluster IPFS proxy (Kubo's RPC API, cluster-aware).
    Proxy,
    /// Kubo's RPC API.
    Kubo,
    /// The ipfs-cluster REST API.
    Rest,
    /// A health path the health filter passed on.
    Health,
}

impl Backend {
    /// Every backend, for tests that hold the route tables to this list.
    pub const ALL: [Backend; 5] = [Backend::Gateway, Backend::Proxy, Backend::Kubo, Backend::Rest, Backend::Health];

    pub fn header_value(self) -> &'static str {
        match self {
            Backend::Gateway => "gateway",
            Backend::Proxy => "proxy",
            Backend::Kubo => "kubo",
            Backend::Rest => "rest",
            Backend::Health => "health",
        }
    }

    pub fn from_header_value(v: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.header_value() == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn header_values_round_trip() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_header_value(b.header_value()), Some(b));
        }
        assert_eq!(Backend::from_header_value("Proxy"), None);
    }
}
