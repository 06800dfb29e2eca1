//! Credentials: bearer tokens and Basic users, compared in constant time.
//! Secrets never appear in `Debug` output or error messages.

use std::collections::BTreeMap;

use subtle::{Choice, ConstantTimeEq};

#[derive(Clone, Default)]
pub struct Credentials {
    bearer: Vec<Vec<u8>>,
    /// base64("user:password"), what a Basic header carries.
    basic: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: a logged policy must not leak a secret.
        f.debug_struct("Credentials")
            .field("bearer_tokens", &self.bearer.len())
            .field("basic_users", &self.basic.len())
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

impl Credentials {
    /// Errors are (key below `credentials`, message).
    pub fn new(
        bearer_tokens: Vec<String>,
        basic: BTreeMap<String, String>,
    ) -> Result<Credentials, (String, String)> {
        let mut bearer = Vec::new();
        for (i, t) in bearer_tokens.into_iter().enumerate() {
            // token68 characters (RFC 7235), at least 16 of them.
            let ok = t.len() >= 16
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
            if !ok {
                return Err((
                    format!("bearer_tokens[{i}]"),
                    "a token is at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =".into(),
                ));
            }
            bearer.push(t.into_bytes());
        }
        let mut basic_tokens = Vec::new();
        for (user, pass) in basic {
            if user.is_empty() || user.contains(':') || user.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err((
                    format!("basic.{user}"),
                    "a user name is non-empty, without ':' or control characters".into(),
                ));
            }
            if pass.len() < 8 {
                return Err((format!("basic.{user}"), "a password has at least 8 characters".into()));
            }
            basic_tokens.push(base64_encode(format!("{user}:{pass}").as_bytes()).into_bytes());
        }
        Ok(Credentials {
            bearer,
            basic: basic_tokens,
        })
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
        let set = if scheme.eq_ignore_ascii_case(b"bearer") {
            &self.bearer
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            &self.basic
        } else {
            return false;
        };
        // Every entry is compared, whatever matched before, so the time taken
        // does not tell which entry (or how much of one) matched.
        let mut ok = Choice::from(0u8);
        for expected in set {
            ok |= ct_eq_padded(rest, expected);
        }
        bool::from(ok)
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// Equality whose running time depends only on the longer length, not on
/// where the inputs differ (subtle's slice `ct_eq` returns early on a length
/// mismatch, which would tell a guesser the secret's length).
fn ct_eq_padded(a: &[u8], b: &[u8]) -> Choice {
    let n = a.len().max(b.len());
    let mut eq = (a.len() as u64).ct_eq(&(b.len() as u64));
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        eq &= x.ct_eq(&y);
    }
    eq
}

/// Standard base64 with padding (RFC 4648 section 4), as Basic uses.
pub fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    out
}
