//! Credentials: bearer tokens and Basic users, given as digests (or, still
//! accepted but reported, in plain text), checked in constant time. Secrets
//! never appear in `Debug` output or error messages.
//!
//! Bearer tokens are SHA-256 digests (`"sha256:<64 hex>"`): tokens are
//! high-entropy random strings, so one unsalted hash is as good as any
//! slow hash against someone who reads the configuration, and it costs one
//! SHA-256 per request. Basic passwords are chosen by people, so they are
//! given as PBKDF2-HMAC-SHA256 with a salt in the PHC string format
//! (`"$pbkdf2-sha256$i=<rounds>,l=<len>$<salt>$<hash>"`, unpadded standard
//! base64): the rounds are the operator's trade between the per-request
//! cost in the Wasm VM and the cost of guessing offline, bounded by
//! [`MAX_PBKDF2_ROUNDS`] (filters/router/README.md has the measured cost).
//! bcrypt and Argon2 were left out: at their usual settings one check takes
//! tens of milliseconds of an Envoy worker per request, and Argon2's memory
//! cost would be paid in the VM's heap.
//!
//! A plain-text entry is hashed when the configuration is read, so every
//! check compares fixed-size digests; [`Credentials::plain_text`] names
//! the entries for the warning the filter logs.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Prefix of a bearer token digest in the configuration.
pub const SHA256_PREFIX: &str = "sha256:";

/// Prefix of a Basic password hash in the configuration (PHC string format).
pub const PBKDF2_PREFIX: &str = "$pbkdf2-sha256$";

/// Most PBKDF2 rounds accepted: the check runs on every request that carries
/// the user's name, so the configuration cannot make one request cost more
/// than this: measured in Envoy's V8 VM, 1,000 rounds add about 0.6 ms per
/// request, 10,000 several ms, 100,000 some 120 ms of a worker
/// (`bench_edge --auth`, filters/router/README.md).
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000;

/// The configuration entry for a bearer token: `"sha256:"` and the hex
/// SHA-256 of the token (what the deployer writes into the policy).
pub fn bearer_digest(token: &str) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// A Basic password hash in the form the configuration takes (PHC string,
/// PBKDF2-HMAC-SHA256, 32-byte hash). `salt` should be at least 16 random
/// bytes.
pub fn pbkdf2_phc(password: &str, salt: &[u8], rounds: u32) -> String {
    let mut hash = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, rounds, &mut hash);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!("{PBKDF2_PREFIX}i={rounds},l=32${}${}", b64.encode(salt), b64.encode(hash))
}

/// The line the filter logs, when configured, for an entry given in plain
/// text (`key` as [`Credentials::plain_text`] names it): what to give
/// instead. Names the key only, never the secret.
pub fn plain_text_warning(key: &str) -> String {
    let instead = if key.starts_with("basic.") {
        format!("a PBKDF2 hash \"{PBKDF2_PREFIX}i=<rounds>,l=32$<salt>$<hash>\" (filters/router/README.md)")
    } else {
        "\"sha256:\" and the hex SHA-256 of the token (`printf %s TOKEN | sha256sum`)".to_string()
    };
    format!(
        "router configuration key `credentials.{key}` holds a secret in plain text: whoever can read the configuration can use it; give {instead} instead"
    )
}

#[derive(Clone)]
enum Password {
    /// SHA-256 of a plain-text password from the configuration.
    Plain([u8; 32]),
    Pbkdf2 { rounds: u32, salt: Vec<u8>, hash: Vec<u8> },
}

impl Password {
    fn verify(&self, given: &[u8]) -> Choice {
        match self {
            Password::Plain(expected) => sha256(given).ct_eq(expected),
            Password::Pbkdf2 { rounds, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha256>(given, salt, *rounds, &mut out);
                out.ct_eq(hash)
            }
        }
    }
}

#[derive(Clone, Default)]
pub struct Credentials {
    /// SHA-256 of every accepted bearer token.
    bearer: Vec<[u8; 32]>,
    /// User name -> password check.
    basic: BTreeMap<String, Password>,
    /// Configuration keys (below `credentials`) of entries given in plain
    /// text.
    plain_text: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: a logged policy must not leak a secret, nor a digest.
        f.debug_struct("Credentials")
            .field("bearer_tokens", &self.bearer.len())
            .field("basic_users", &self.basic.len())
            .field("plain_text", &self.plain_text.len())
            .finish()
    }
}

/// Outcome of looking at the Authorization header(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Missing,
    Invalid,
    Valid,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A `"sha256:<hex>"` entry's digest; `None` if it is not one.
fn parse_sha256(entry: &str) -> Option<Result<[u8; 32], String>> {
    let hex_part = entry.strip_prefix(SHA256_PREFIX)?;
    let mut d = [0u8; 32];
    Some(
        hex::decode_to_slice(hex_part, &mut d)
            .map(|()| d)
            .map_err(|_| "a digest is \"sha256:\" and 64 hex digits (the SHA-256 of the token)".to_string()),
    )
}

/// A `"$pbkdf2-sha256$i=N[,l=L]$salt$hash"` entry.
fn parse_pbkdf2(entry: &str) -> Result<Password, String> {
    let bad = || {
        format!(
            "a password hash is \"{PBKDF2_PREFIX}i=<rounds>,l=32$<salt>$<hash>\" (PHC string, unpadded base64, \
             rounds 1 to {MAX_PBKDF2_ROUNDS}, salt at least 8 bytes, hash 16 to 64 bytes)"
        )
    };
    let rest = entry.strip_prefix(PBKDF2_PREFIX).ok_or_else(bad)?;
    let mut parts = rest.split('$');
    let (Some(params), Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let mut rounds = None;
    let mut len = None;
    for p in params.split(',') {
        match p.split_once('=') {
            Some(("i", v)) if rounds.is_none() => rounds = v.parse::<u32>().ok(),
            Some(("l", v)) if len.is_none() => len = v.parse::<usize>().ok(),
            _ => return Err(bad()),
        }
    }
    // PHC's B64 is standard base64 without padding; padded input is read too.
    let b64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let (Some(rounds), Ok(salt), Ok(hash)) = (rounds, b64.decode(salt), b64.decode(hash)) else {
        return Err(bad());
    };
    let ok = (1..=MAX_PBKDF2_ROUNDS).contains(&rounds)
        && salt.len() >= 8
        && (16..=64).contains(&hash.len())
        && len.is_none_or(|l| l == hash.len());
    if !ok {
        return Err(bad());
    }
    Ok(Password::Pbkdf2 { rounds, salt, hash })
}

impl Credentials {
    /// Errors are (key below `credentials`, message).
    pub fn new(
        bearer_tokens: Vec<String>,
        basic: BTreeMap<String, String>,
    ) -> Result<Credentials, (String, String)> {
        let mut c = Credentials::default();
        for (i, t) in bearer_tokens.into_iter().enumerate() {
            let key = format!("bearer_tokens[{i}]");
            match parse_sha256(&t) {
                Some(Ok(d)) => c.bearer.push(d),
                Some(Err(msg)) => return Err((key, msg)),
                None => {
                    // token68 characters (RFC 7235), at least 16 of them.
                    let ok = t.len() >= 16
                        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
                    if !ok {
                        return Err((
                            key,
                            "a token is \"sha256:\" and the hex SHA-256 of the token, or (plain text, reported) at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =".into(),
                        ));
                    }
                    c.bearer.push(sha256(t.as_bytes()));
                    c.plain_text.push(key);
                }
            }
        }
        for (user, pass) in basic {
            let key = format!("basic.{user}");
            if user.is_empty() || user.contains(':') || user.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err((key, "a user name is non-empty, without ':' or control characters".into()));
            }
            let check = if pass.starts_with('$') {
                parse_pbkdf2(&pass).map_err(|msg| (key.clone(), msg))?
            } else {
                if pass.len() < 8 {
                    return Err((key, "a password has at least 8 characters".into()));
                }
                c.plain_text.push(key);
                Password::Plain(sha256(pass.as_bytes()))
            };
            c.basic.insert(user, check);
        }
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        self.bearer.is_empty() && self.basic.is_empty()
    }

    pub fn has_bearer(&self) -> bool {
        !self.bearer.is_empty()
    }

    pub fn has_basic(&self) -> bool {
        !self.basic.is_empty()
    }

    /// Keys (below `credentials`, e.g. `bearer_tokens[0]`, `basic.alice`) of
    /// the entries given in plain text: the filter logs them when configured.
    pub fn plain_text(&self) -> &[String] {
        &self.plain_text
    }

    /// Checks the values of every `Authorization` header of the request.
    /// More than one header is refused as invalid: backends would read the
    /// first, this filter could not tell which one it vouched for.
    pub fn check(&self, values: &[&[u8]]) -> AuthResult {
        match values {
            [] => AuthResult::Missing,
            [one] => {
                if self.check_one(one) {
                    AuthResult::Valid
                } else {
                    AuthResult::Invalid
                }
            }
            _ => AuthResult::Invalid,
        }
    }

    fn check_one(&self, value: &[u8]) -> bool {
        let value = trim(value);
        let Some(sp) = value.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, rest) = (&value[..sp], trim(&value[sp + 1..]));
        if scheme.eq_ignore_ascii_case(b"bearer") {
            // Every digest is compared, whatever matched before, so the time
            // taken does not tell which entry matched; the digests have one
            // length, so nor does it tell a token's length.
            let given = sha256(rest);
            let mut ok = Choice::from(0u8);
            for expected in &self.bearer {
                ok |= given.ct_eq(expected);
            }
            bool::from(ok)
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            // Basic as Go's net/http reads it: standard base64 with padding,
            // the user name up to the first ':'.
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return false;
            };
            let Some(colon) = decoded.iter().position(|&b| b == b':') else {
                return false;
            };
            let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
            // User names are not secret (the time taken may tell whether one
            // exists); the password check is constant-time.
            match std::str::from_utf8(user).ok().and_then(|u| self.basic.get(u)) {
                Some(check) => bool::from(check.verify(pass)),
                None => false,
            }
        } else {
            false
        }
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// Standard base64 with padding (RFC 4648 section 4), as Basic uses.
pub fn base64_encode(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        format!("Basic {}", base64_encode(format!("{user}:{pass}").as_bytes())).into_bytes()
    }

    #[test]
    fn a_digest_accepts_its_token_only() {
        let token = "k3Jq9f0c1VwYt5sPq2XrL8mN4bZa7uEo";
        let c = Credentials::new(vec![bearer_digest(token)], BTreeMap::new()).unwrap();
        assert!(c.plain_text().is_empty());
        let ok = format!("Bearer {token}");
        assert_eq!(c.check(&[ok.as_bytes()]), AuthResult::Valid);
        // The digest itself is not a token.
        let digest = format!("Bearer {}", bearer_digest(token));
        assert_eq!(c.check(&[digest.as_bytes()]), AuthResult::Invalid);
        assert_eq!(c.check(&[&ok.as_bytes()[..ok.len() - 1]]), AuthResult::Invalid);
        // SHA-256 of the empty string, a known vector (FIPS 180-2 examples).
        assert_eq!(bearer_digest(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn pbkdf2_hashes_check_the_password() {
        // RFC 7914 section 11's PBKDF2-HMAC-SHA256 vector ("passwd", "salt", 1 round).
        let mut out = [0u8; 16];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"passwd", b"salt", 1, &mut out);
        assert_eq!(hex::encode(out), "55ac046e56e3089fec1691c22544b605");
        let phc = pbkdf2_phc("passwd", b"saltsalt", 7);
        assert!(phc.starts_with("$pbkdf2-sha256$i=7,l=32$c2FsdHNhbHQ$"), "{phc}");
        let Ok(Password::Pbkdf2 { rounds: 7, salt, hash }) = parse_pbkdf2(&phc) else { panic!("{phc}") };
        assert_eq!((salt.as_slice(), hash.len()), (&b"saltsalt"[..], 32));
        let mut users = BTreeMap::new();
        users.insert("alice".to_string(), pbkdf2_phc("wonderland-42", b"0123456789abcdef", 1000));
        let c = Credentials::new(Vec::new(), users).unwrap();
        assert!(c.plain_text().is_empty());
        assert_eq!(c.check(&[&basic("alice", "wonderland-42")]), AuthResult::Valid);
        assert_eq!(c.check(&[&basic("alice", "wonderland-43")]), AuthResult::Invalid);
        assert_eq!(c.check(&[&basic("bob", "wonderland-42")]), AuthResult::Invalid);
    }

    #[test]
    fn bad_hashes_are_refused_with_their_key() {
        for bad in [
            "$pbkdf2-sha256$i=0,l=32$c2FsdHNhbHQ$VazB",
            "$pbkdf2-sha256$i=10001$c2FsdHNhbHQ$VaxwbmVz4Fh0FlZ0LcfLdA",
            "$pbkdf2-sha256$i=10$c2FsdA$VaxwbmVz4Fh0FlZ0LcfLdA",
            "$pbkdf2-sha256$i=10,l=20$c2FsdHNhbHQ$VaxwbmVz4Fh0FlZ0LcfLdA",
            "$pbkdf2-sha256$i=10$c2FsdHNhbHQ$%%%",
            "$bcrypt$whatever",
        ] {
            let mut users = BTreeMap::new();
            users.insert("u".to_string(), bad.to_string());
            let (key, msg) = Credentials::new(Vec::new(), users).unwrap_err();
            assert_eq!(key, "basic.u", "{bad}");
            assert!(msg.contains("PHC"), "{bad}: {msg}");
        }
        let (key, msg) = Credentials::new(vec!["sha256:abc".into()], BTreeMap::new()).unwrap_err();
        assert_eq!(key, "bearer_tokens[0]");
        assert!(msg.contains("64 hex"), "{msg}");
    }

    #[test]
    fn plain_text_entries_still_work_and_are_named() {
        let mut users = BTreeMap::new();
        users.insert("op".to_string(), "correct horse".to_string());
        let c = Credentials::new(vec!["a-plain-token-0123456".into(), bearer_digest("x".repeat(20).as_str())], users).unwrap();
        assert_eq!(c.plain_text(), ["bearer_tokens[0]", "basic.op"]);
        assert_eq!(c.check(&[b"Bearer a-plain-token-0123456"]), AuthResult::Valid);
        assert_eq!(c.check(&[&basic("op", "correct horse")]), AuthResult::Valid);
        assert_eq!(c.check(&[&basic("op", "correct horsf")]), AuthResult::Invalid);
        // Not canonical base64 (Go's StdEncoding refuses it too).
        assert_eq!(c.check(&[b"Basic b3A6Y29ycmVjdCBob3JzZQ"]), AuthResult::Invalid);
        assert!(!format!("{c:?}").contains("horse"));
    }
}
