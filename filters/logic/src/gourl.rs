//! Go's `net/url` escaping, as Kubo, ipfs-cluster and boxo apply it to
//! queries, paths and multipart file names.

/// `url.QueryUnescape` (`plus_is_space`) or `url.PathUnescape`: `%XX`
/// decoded, `None` on a malformed escape.
pub fn unescape(raw: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hi = hex(*raw.get(i + 1)?)?;
                let lo = hex(*raw.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `url.QueryEscape`.
pub fn query_escape(v: &[u8]) -> String {
    let mut out = String::with_capacity(v.len());
    for &c in v {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(c as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn unescapes_like_go() {
        assert_eq!(unescape(b"a%2Fb+c", true).unwrap(), b"a/b c");
        assert_eq!(unescape(b"a+c", false).unwrap(), b"a+c");
        assert_eq!(unescape(b"%zz", true), None);
        assert_eq!(unescape(b"%4", true), None);
        assert_eq!(unescape(b"%e2%82%ac", true).unwrap(), "€".as_bytes());
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(query_escape(b"a b/c~d"), "a+b%2Fc~d");
        assert_eq!(query_escape("€".as_bytes()), "%E2%82%AC");
    }
}
