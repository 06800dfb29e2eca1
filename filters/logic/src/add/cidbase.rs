//! `cid-base`, as Kubo applies it to the `Hash` of add events
//! (kubo core/commands/cmdenv/cidbase.go, go-cidutil cidenc, go-multibase).

use cid::multibase::Base;
use cid::Cid;

/// The multibases go-multibase knows, by name; a single character names
/// the base with that prefix (`EncoderByName`). Base8, Base10, Base32Z and
/// Base45 exist in Rust's multibase but not in Go's table, so Kubo refuses
/// them and so does this.
const NAMES: &[(&str, Option<Base>)] = &[
    ("identity", None),
    ("base2", Some(Base::Base2)),
    ("base16", Some(Base::Base16Lower)),
    ("base16upper", Some(Base::Base16Upper)),
    ("base32", Some(Base::Base32Lower)),
    ("base32upper", Some(Base::Base32Upper)),
    ("base32pad", Some(Base::Base32PadLower)),
    ("base32padupper", Some(Base::Base32PadUpper)),
    ("base32hex", Some(Base::Base32HexLower)),
    ("base32hexupper", Some(Base::Base32HexUpper)),
    ("base32hexpad", Some(Base::Base32HexPadLower)),
    ("base32hexpadupper", Some(Base::Base32HexPadUpper)),
    ("base36", Some(Base::Base36Lower)),
    ("base36upper", Some(Base::Base36Upper)),
    ("base58btc", Some(Base::Base58Btc)),
    ("base58flickr", Some(Base::Base58Flickr)),
    ("base64", Some(Base::Base64)),
    ("base64url", Some(Base::Base64Url)),
    ("base64pad", Some(Base::Base64Pad)),
    ("base64urlpad", Some(Base::Base64UrlPad)),
    ("base256emoji", Some(Base::Base256Emoji)),
];

/// A CID encoder: a multibase (`None` = identity) and whether CIDv0 is
/// upgraded to CIDv1 before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidBase {
    base: Option<Base>,
    upgrade: bool,
}

impl Default for CidBase {
    /// go-cidutil `cidenc.Default()`: base32, no upgrade.
    fn default() -> Self {
        CidBase { base: Some(Base::Base32Lower), upgrade: false }
    }
}

impl CidBase {
    /// `cmdenv.GetCidEncoder` for a non-empty `cid-base` value.
    pub fn by_name(name: &str) -> Result<CidBase, String> {
        let mut chars = name.chars();
        let found = match (chars.next(), chars.next()) {
            (Some(c), None) => NAMES.iter().find(|(_, b)| match b {
                Some(b) => b.code() == c,
                None => c == '\0',
            }),
            _ => NAMES.iter().find(|(n, _)| *n == name),
        };
        let (_, base) = found.ok_or_else(|| format!("unsupported multibase encoding: {name}"))?;
        Ok(CidBase { base: *base, upgrade: *base != Some(Base::Base58Btc) })
    }

    pub fn with_upgrade(self, upgrade: bool) -> CidBase {
        CidBase { upgrade, ..self }
    }

    /// Re-encodes a CID string written by the cluster (`cid.String()`).
    /// Returns the encoded bytes (may be non-UTF-8 only for identity), or
    /// `None` when the input is not a CID, in which case it is left alone.
    pub fn encode(&self, cid_str: &str) -> Option<Vec<u8>> {
        let mut c = Cid::try_from(cid_str).ok()?;
        if c.version() == cid::Version::V0 {
            if !self.upgrade {
                // go-cid: a CIDv0 always prints in base58btc.
                return Some(c.to_string().into_bytes());
            }
            c = Cid::new_v1(c.codec(), *c.hash());
        }
        Some(match self.base {
            Some(b) => cid::multibase::encode(b, c.to_bytes()).into_bytes(),
            None => {
                let mut v = vec![0u8];
                v.extend_from_slice(&c.to_bytes());
                v
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const V0: &str = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";

    fn enc(base: &str, c: &str) -> String {
        String::from_utf8(CidBase::by_name(base).unwrap().encode(c).unwrap()).unwrap()
    }

    #[test]
    fn v0_is_upgraded_for_other_bases() {
        // `ipfs cid format -v 1 -b base32` of the empty file's CID.
        assert_eq!(enc("base32", V0), "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y");
        assert_eq!(enc("b", V0), "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y");
        assert_eq!(enc("base58btc", V0), V0);
        assert_eq!(enc("z", V0), V0);
        assert!(enc("base36", V0).starts_with('k'));
    }

    #[test]
    fn v1_is_reencoded() {
        let b32 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        assert_eq!(enc("base32", b32), b32);
        let z = enc("base58btc", b32);
        assert!(z.starts_with('z'));
        assert_eq!(enc("base32", &z), b32);
        assert_eq!(enc("base32upper", b32), format!("B{}", b32[1..].to_ascii_uppercase()));
    }

    #[test]
    fn deprecated_upgrade_flag_overrides() {
        let b = CidBase::default().with_upgrade(true);
        assert!(String::from_utf8(b.encode(V0).unwrap()).unwrap().starts_with("bafy"));
        let keep = CidBase::by_name("base32").unwrap().with_upgrade(false);
        assert_eq!(keep.encode(V0).unwrap(), V0.as_bytes());
    }

    #[test]
    fn unknown_bases_refused_with_kubos_message() {
        for n in ["nope", "base10", "7", "h", "base32z", "zz"] {
            assert_eq!(CidBase::by_name(n), Err(format!("unsupported multibase encoding: {n}")));
        }
    }

    #[test]
    fn non_cids_left_alone() {
        assert_eq!(CidBase::default().encode("not-a-cid"), None);
    }
}
