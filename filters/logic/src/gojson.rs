//! JSON text exactly as Go's `encoding/json` writes it (Kubo and ipfs-cluster
//! both encode their add events with it). serde_json differs in the details a
//! byte-for-byte comparison notices: Go escapes `<`, `>`, `&`, U+2028 and
//! U+2029, and turns invalid UTF-8 into `\ufffd`.

/// Appends `s` as a quoted JSON string, escaped the way Go 1.22+ escapes it
/// (`json.Encoder` with the default `SetEscapeHTML(true)`).
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

/// Appends the escaped body of a JSON string, without quotes.
pub fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s;
    while !rest.is_empty() {
        let b = rest[0];
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'<' | b'>' | b'&' | 0x00..=0x1f => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                _ => out.push(b),
            }
            rest = &rest[1..];
            continue;
        }
        // A multi-byte sequence: copy it when valid, else one U+FFFD per
        // invalid byte, as Go's utf8.DecodeRune does (width 1 on error).
        let valid = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
            Ok(s) => s.chars().next().map(char::len_utf8),
            Err(e) if e.valid_up_to() > 0 => {
                std::str::from_utf8(&rest[..e.valid_up_to()]).ok().and_then(|s| s.chars().next()).map(char::len_utf8)
            }
            Err(_) => None,
        };
        match valid {
            Some(n) => {
                let c = &rest[..n];
                if c == "\u{2028}".as_bytes() {
                    out.extend_from_slice(b"\\u2028");
                } else if c == "\u{2029}".as_bytes() {
                    out.extend_from_slice(b"\\u2029");
                } else {
                    out.extend_from_slice(c);
                }
                rest = &rest[n..];
            }
            None => {
                out.extend_from_slice(b"\\ufffd");
                rest = &rest[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn enc(s: &[u8]) -> String {
        let mut v = Vec::new();
        push_string(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(enc(b"a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(enc(b"q\"\\\n\r\t\x08\x0c\x01\x1f"), r#""q\"\\\n\r\t\b\f\u0001\u001f""#);
        assert_eq!(enc("é😀".as_bytes()), "\"é😀\"");
        assert_eq!(enc("\u{2028}\u{2029}".as_bytes()), r#""\u2028\u2029""#);
        assert_eq!(enc(b"a\xffb\xe2\x82"), r#""a\ufffdb\ufffd\ufffd""#);
        assert_eq!(enc(b"/"), "\"/\"");
    }
}
