//! Secrets the deployer generates once: the cluster secret, one libp2p identity per
//! ordinal, in ipfs-cluster's `identity.json` format, and the API tokens (bearer tokens for
//! writes through the edge; the router's policy holds only their SHA-256).

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Base58 peer ID (`12D3KooW...`).
    pub id: String,
    /// Base64 of the protobuf-encoded libp2p private key, as in identity.json.
    pub private_key: String,
}

impl PeerIdentity {
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).expect("the OS random source");
        Self::from_seed(&seed)
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("32-byte seed");
        let public: &[u8] = pair.public_key().as_ref();
        // libp2p crypto.proto: KeyType Ed25519 = 1; the private Data is seed || public.
        let mut private = vec![0x08, 0x01, 0x12, 0x40];
        private.extend_from_slice(seed);
        private.extend_from_slice(public);
        let mut public_pb = vec![0x08, 0x01, 0x12, 0x20];
        public_pb.extend_from_slice(public);
        // Keys of at most 42 bytes are inlined in the peer ID: identity multihash (0x00).
        let mut multihash = vec![0x00, public_pb.len() as u8];
        multihash.extend_from_slice(&public_pb);
        PeerIdentity {
            id: bs58::encode(multihash).into_string(),
            private_key: base64::engine::general_purpose::STANDARD.encode(private),
        }
    }

    pub fn identity_json(&self) -> String {
        serde_json::json!({ "id": self.id, "private_key": self.private_key }).to_string()
    }

    pub fn from_identity_json(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(PeerIdentity {
            id: v.get("id")?.as_str()?.to_string(),
            private_key: v.get("private_key")?.as_str()?.to_string(),
        })
    }
}

/// What bootstrapping needs, generated once and then read back from the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generated {
    /// 32 bytes, hex (ipfs-cluster's `secret`).
    pub cluster_secret: String,
    pub identities: BTreeMap<u32, PeerIdentity>,
    /// Token name -> bearer token; `None` until read back from the cluster (no Secret yet:
    /// `ensure` creates the admin token), `Some` (maybe empty) once the Secret exists.
    pub api_tokens: Option<BTreeMap<String, String>>,
}

/// The token `up` creates on a new cluster.
pub const ADMIN_TOKEN: &str = "admin";

/// A new bearer token: 32 random bytes, unpadded base64url (43 characters of the token68
/// set the router accepts).
pub fn new_api_token() -> String {
    let mut b = [0u8; 32];
    SystemRandom::new().fill(&mut b).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Token names are Secret data keys and show in `token list`: a DNS label keeps them
/// readable and valid as keys.
pub fn check_token_name(name: &str) -> Result<(), String> {
    if crate::config::is_dns_label(name) {
        Ok(())
    } else {
        Err(format!("token name {name:?}: use lowercase letters, digits and '-' (at most 63, e.g. \"ci\" or \"alice-laptop\")"))
    }
}

impl Generated {
    pub fn new_cluster_secret() -> String {
        let mut b = [0u8; 32];
        SystemRandom::new().fill(&mut b).expect("the OS random source");
        hex::encode(b)
    }

    /// Fills what is missing for `replicas` peers; never replaces what exists.
    pub fn ensure(&mut self, replicas: u32) {
        if self.cluster_secret.is_empty() {
            self.cluster_secret = Self::new_cluster_secret();
        }
        for i in 0..replicas {
            self.identities.entry(i).or_insert_with(PeerIdentity::generate);
        }
        if self.api_tokens.is_none() {
            self.api_tokens = Some(BTreeMap::from([(ADMIN_TOKEN.to_string(), new_api_token())]));
        }
    }

    /// The API tokens Secret's stringData: token name -> token.
    pub fn api_tokens_json(&self) -> serde_json::Value {
        serde_json::to_value(self.api_tokens.clone().unwrap_or_default()).unwrap_or_default()
    }

    /// The identities Secret's stringData: `peer-<i>.json` and `peer-<i>.id`.
    pub fn identities_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (i, p) in &self.identities {
            m.insert(format!("peer-{i}.json"), p.identity_json().into());
            m.insert(format!("peer-{i}.id"), p.id.clone().into());
        }
        serde_json::Value::Object(m)
    }

    /// Reads back the identities Secret's decoded data.
    pub fn identities_from_data(data: &BTreeMap<String, String>) -> BTreeMap<u32, PeerIdentity> {
        data.iter()
            .filter_map(|(k, v)| {
                let i = k.strip_prefix("peer-")?.strip_suffix(".json")?.parse().ok()?;
                Some((i, PeerIdentity::from_identity_json(v)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_libp2p_spec_test_vector() {
        // libp2p specs, peer-ids.md, Ed25519 test vector.
        let seed: [u8; 32] = hex::decode("7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d")
            .unwrap()
            .try_into()
            .unwrap();
        let p = PeerIdentity::from_seed(&seed);
        let private = base64::engine::general_purpose::STANDARD.decode(&p.private_key).unwrap();
        assert_eq!(
            hex::encode(private),
            "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
        );
        let mh = bs58::decode(&p.id).into_vec().unwrap();
        assert_eq!(
            hex::encode(&mh[2..]),
            "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
        );
        assert!(p.id.starts_with("12D3KooW"), "{}", p.id);
    }

    #[test]
    fn ensure_keeps_what_exists() {
        let mut g = Generated::default();
        g.ensure(2);
        let before = g.clone();
        g.ensure(3);
        assert_eq!(g.cluster_secret, before.cluster_secret);
        assert_eq!(g.identities[&0], before.identities[&0]);
        assert_eq!(g.identities.len(), 3);
        assert_eq!(g.cluster_secret.len(), 64);
        let data: BTreeMap<String, String> = g
            .identities_json()
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(Generated::identities_from_data(&data), g.identities);
        // One admin token on a new cluster; what the cluster holds (even none) is kept.
        let tokens = g.api_tokens.clone().unwrap();
        assert_eq!(tokens.keys().collect::<Vec<_>>(), [ADMIN_TOKEN]);
        assert_eq!(tokens[ADMIN_TOKEN].len(), 43);
        assert_ne!(tokens[ADMIN_TOKEN], new_api_token());
        g.ensure(3);
        assert_eq!(g.api_tokens.as_ref(), Some(&tokens));
        let mut revoked = Generated { api_tokens: Some(BTreeMap::new()), ..Default::default() };
        revoked.ensure(1);
        assert_eq!(revoked.api_tokens, Some(BTreeMap::new()));
        assert!(check_token_name("ci-2").is_ok());
        assert!(check_token_name("CI").is_err() && check_token_name("a.b").is_err() && check_token_name("").is_err());
    }
}
