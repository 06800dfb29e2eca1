//! Small reimplementations of Go standard-library formatting that shows up on the
//! wire: `encoding/json` string escaping, `strconv.Quote` (`%q`), `http.TimeFormat`,
//! `textproto.CanonicalMIMEHeaderKey`, `strconv.ParseBool`/`ParseInt`.
//! (Go 1.26 standard library; both Kubo and ipfs-cluster v1.1.6 build with it.)

use std::time::{SystemTime, UNIX_EPOCH};

/// Go `encoding/json` string encoding with `escapeHTML = true` (the default for both
/// `json.Marshal` and `json.NewEncoder`), applied to raw bytes: Go strings are bytes and
/// invalid UTF-8 is replaced by `\ufffd` **per invalid byte** (encode.go `appendString`).
pub fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'<' | b'>' | b'&' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                c if c < 0x20 => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 0xf) as usize]);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        match decode_rune(&s[i..]) {
            None => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
            }
            Some((c, n)) => {
                if c == '\u{2028}' || c == '\u{2029}' {
                    out.extend_from_slice(if c == '\u{2028}' { b"\\u2028" } else { b"\\u2029" });
                } else {
                    out.extend_from_slice(&s[i..i + n]);
                }
                i += n;
            }
        }
    }
    out.push(b'"');
}

/// One UTF-8 rune at the start of `s`, as Go's `utf8.DecodeRune` accepts it.
pub fn decode_rune(s: &[u8]) -> Option<(char, usize)> {
    let max = s.len().min(4);
    for n in 1..=max {
        if let Ok(t) = std::str::from_utf8(&s[..n]) {
            return t.chars().next().map(|c| (c, n));
        }
    }
    None
}

/// Go `strconv.Quote` on bytes (what `%q` prints for a `[]byte`/string).
pub fn go_quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut i = 0;
    while i < s.len() {
        match decode_rune(&s[i..]) {
            None => {
                out.push_str(&format!("\\x{:02x}", s[i]));
                i += 1;
            }
            Some((c, n)) => {
                match c {
                    '\x07' => out.push_str("\\a"),
                    '\x08' => out.push_str("\\b"),
                    '\x0c' => out.push_str("\\f"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\x0b' => out.push_str("\\v"),
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        out.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    // Go keeps printable runes; non-printables above ASCII are rare in
                    // header lines and are escaped as \u.
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
                i += n;
            }
        }
    }
    out.push('"');
    out
}

/// `http.TimeFormat` ("Mon, 02 Jan 2006 15:04:05 GMT") of now (server.go `appendTime`).
pub fn http_date_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    http_date(secs)
}

pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days.rem_euclid(7)) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Go `textproto` token byte (`validHeaderFieldByte`).
pub fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// `textproto.CanonicalMIMEHeaderKey`: returned unchanged if it holds a non-token byte.
pub fn canonical_key(k: &str) -> String {
    canonical_key_checked(k.as_bytes()).0
}

/// `canonicalMIMEHeaderKey` with its ok flag (false: key has a non-token byte).
pub fn canonical_key_checked(k: &[u8]) -> (String, bool) {
    if k.is_empty() || !k.iter().all(|&c| is_token_byte(c)) {
        return (String::from_utf8_lossy(k).into_owned(), false);
    }
    let mut upper = true;
    let mut out = String::with_capacity(k.len());
    for &c in k {
        let c = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
        out.push(c as char);
        upper = c == b'-';
    }
    (out, true)
}

/// Go `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go `strconv.ParseInt(s, base, bits)` for base 0 (prefixes 0x, 0o, 0b, 0, and `_`
/// separators) or 10; `None` on any error.
pub fn parse_int(s: &str, base0: bool, bits: u32) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits, prefixed) = if base0 {
        let lower = body.to_ascii_lowercase();
        if lower.starts_with("0x") {
            (16, &body[2..], true)
        } else if lower.starts_with("0o") {
            (8, &body[2..], true)
        } else if lower.starts_with("0b") {
            (2, &body[2..], true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, false)
        }
    } else {
        (10, body, false)
    };
    // Underscores are only allowed with base 0, between digits / after a prefix.
    let cleaned: String;
    let digits = if base0 && digits.contains('_') {
        let bytes = body.as_bytes();
        // underscoreOK: must not start/end with '_' nor have "__"; needs a prefix.
        if !prefixed && radix == 10 {
            return None;
        }
        if digits.ends_with('_') || digits.contains("__") || bytes.is_empty() {
            return None;
        }
        cleaned = digits.replace('_', "");
        cleaned.as_str()
    } else {
        digits
    };
    if digits.is_empty() && !(radix == 8 && prefixed && body == "0") {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    let limit: u64 = 1u64 << (bits - 1);
    if neg {
        if mag > limit {
            return None;
        }
        Some((-(mag as i128)) as i64)
    } else {
        if mag >= limit {
            return None;
        }
        Some(mag as i64)
    }
}

/// Go `strconv.Atoi` (base 10, 64-bit).
pub fn atoi(s: &str) -> Option<i64> {
    parse_int(s, false, 64)
}

/// Go `url.QueryUnescape` on bytes: `%XX` decoded, `+` → space; `None` on a bad escape.
pub fn query_unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let h = s.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let l = s.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            b'+' => {
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

/// Go `url.ParseQuery` (as used by `r.URL.Query()`, which drops malformed pairs): pairs
/// split on `&`, keys and values `QueryUnescape`d; pairs with a bad escape or a `;` are
/// skipped. Order of first appearance is kept; values accumulate per key.
pub fn parse_query(q: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for pair in q.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (query_unescape(k.as_bytes()), query_unescape(v.as_bytes()))
        else {
            continue;
        };
        let k = String::from_utf8_lossy(&k).into_owned();
        let v = String::from_utf8_lossy(&v).into_owned();
        match out.iter_mut().find(|(kk, _)| *kk == k) {
            Some((_, vs)) => vs.push(v),
            None => out.push((k, vec![v])),
        }
    }
    out
}

/// `url.Values.Get`: first value or "".
pub fn query_get<'a>(q: &'a [(String, Vec<String>)], k: &str) -> &'a str {
    q.iter().find(|(kk, _)| kk == k).and_then(|(_, v)| v.first()).map(|s| s.as_str()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_like_go() {
        let mut o = Vec::new();
        json_string(&mut o, b"a<b>&\"\\\n\x01\xff\xe2\x80\xa8\xc3\xa9");
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\ufffd\\u2028\u{e9}\""
        );
    }

    #[test]
    fn date_format() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_596_379), "Wed, 25 Nov 2026 08:46:19 GMT");
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_key("content-disposition"), "Content-Disposition");
        assert_eq!(canonical_key("x-stream-error"), "X-Stream-Error");
        assert!(!canonical_key_checked(b"bad key").1);
    }

    #[test]
    fn ints_and_bools() {
        assert_eq!(parse_int("0x1", true, 32), Some(1));
        assert_eq!(parse_int("01", true, 32), Some(1));
        assert_eq!(parse_int("0", true, 32), Some(0));
        assert_eq!(parse_int("1_0", true, 32), None);
        assert_eq!(parse_int("abc", true, 32), None);
        assert_eq!(parse_int("3000000000", true, 32), None);
        assert_eq!(atoi("-1"), Some(-1));
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("tRuE"), None);
    }

    #[test]
    fn query() {
        let q = parse_query("a=1&b=%2&c=x+y&a=2&d");
        assert_eq!(query_get(&q, "a"), "1");
        assert_eq!(query_get(&q, "b"), "");
        assert_eq!(query_get(&q, "c"), "x y");
        assert_eq!(q.iter().find(|(k, _)| k == "a").unwrap().1.len(), 2);
        assert!(q.iter().any(|(k, _)| k == "d"));
        assert_eq!(go_quote(b"broken"), "\"broken\"");
    }
}
