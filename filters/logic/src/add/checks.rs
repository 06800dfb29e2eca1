//! Checks Kubo makes before its first event, with Kubo's messages.
//!
//! The cluster makes the same checks only after it has answered `200`, so
//! a client would see an empty `200` with an `X-Stream-Error` trailer where
//! Kubo gives a `500` with a JSON body (add-compat row 10). A Proxy-Wasm
//! filter cannot hold the response status until it knows (Envoy turns a
//! paused response-header callback into StopAllIteration: no body callback
//! comes until the filter resumes), so the filter makes these checks itself
//! on the request and answers as Kubo does.

/// boxo chunker/parse.go `ChunkSizeLimit`.
const CHUNK_SIZE_LIMIT: i64 = 2 * 1024 * 1024 - 256;

/// boxo chunker/parse.go `FromString`, the same messages.
pub fn chunker(spec: &str) -> Result<(), String> {
    if spec.is_empty() || spec == "default" {
        return Ok(());
    }
    let name = spec.split('-').next().unwrap_or_default();
    let parts: Vec<&str> = spec.split('-').collect();
    match name {
        "size" => {
            if parts.len() != 2 {
                return Err("incorrect chunker string format (expected size-{size})".into());
            }
            let size = atoi(parts[1])?;
            if size <= 0 {
                Err("chunker size must be greater than 0".into())
            } else if size > CHUNK_SIZE_LIMIT {
                Err(size_max())
            } else {
                Ok(())
            }
        }
        "buzhash" => Ok(()),
        "rabin" => match parts.len() {
            1 => Ok(()),
            2 => {
                let size = atoi(parts[1])?;
                // Go: int(float32(size)*1.5) > ChunkSizeLimit.
                if ((size as f32) * 1.5) as i64 > CHUNK_SIZE_LIMIT {
                    Err(size_max())
                } else {
                    Ok(())
                }
            }
            4 => {
                let field = |part: &str, label: &str, msg: &str| -> Result<i64, String> {
                    let sub: Vec<&str> = part.split(':').collect();
                    if sub.len() > 1 && sub[0] != label {
                        return Err(msg.into());
                    }
                    atoi(sub[sub.len() - 1])
                };
                let min = field(parts[1], "min", "first label must be min")?;
                if min < 16 {
                    return Err("rabin min must be greater than 16".into());
                }
                let avg = field(parts[2], "avg", "second label must be avg")?;
                let max = field(parts[3], "max", "final label must be max")?;
                if min >= avg {
                    Err("incorrect format: rabin-min must be smaller than rabin-avg".into())
                } else if avg >= max {
                    Err("incorrect format: rabin-avg must be smaller than rabin-max".into())
                } else if max > CHUNK_SIZE_LIMIT {
                    Err(size_max())
                } else {
                    Ok(())
                }
            }
            _ => Err("incorrect format (expected 'rabin' 'rabin-[avg]' or 'rabin-[min]-[avg]-[max]'".into()),
        },
        _ => Err(format!("unrecognized chunker option: {spec}")),
    }
}

fn size_max() -> String {
    format!("chunker parameters may not exceed the maximum chunk size of {CHUNK_SIZE_LIMIT}")
}

/// Go's `strconv.Atoi` with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(s)));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", go_quote(s)))
}

/// `strconv.Quote` for the characters a query value carries.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// go-multihash `Names` (multihash.go), which both Kubo and the cluster
/// look the lower-cased `hash` option up in.
pub fn hash_known(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "identity", "sha1", "sha2-256", "sha2-512", "sha3", "sha3-224", "sha3-256", "sha3-384", "sha3-512",
        "dbl-sha2-256", "murmur3-x64-64", "keccak-224", "keccak-256", "keccak-384", "keccak-512", "blake3",
        "shake-128", "shake-256", "sha2-256-trunc254-padded", "x11", "md5", "poseidon-bls12_381-a2-fc1",
    ];
    if NAMES.contains(&name) {
        return true;
    }
    // blake2b-8 .. blake2b-512 and blake2s-8 .. blake2s-256, in steps of 8.
    let bits = |prefix: &str, max: u32| {
        name.strip_prefix(prefix)
            .filter(|d| !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u32>().ok())
            .is_some_and(|n| n % 8 == 0 && (8..=max).contains(&n))
    };
    bits("blake2b-", 512) || bits("blake2s-", 256)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn chunker_messages_are_boxos() {
        assert_eq!(chunker("size-262144"), Ok(()));
        assert_eq!(chunker("rabin-16-32-64"), Ok(()));
        assert_eq!(chunker("rabin-min:16-avg:32-max:64"), Ok(()));
        assert_eq!(chunker("buzhash"), Ok(()));
        assert_eq!(chunker("foo").unwrap_err(), "unrecognized chunker option: foo");
        assert_eq!(chunker("size-0").unwrap_err(), "chunker size must be greater than 0");
        assert_eq!(chunker("size-abc").unwrap_err(), "strconv.Atoi: parsing \"abc\": invalid syntax");
        assert_eq!(chunker("size-1-2").unwrap_err(), "incorrect chunker string format (expected size-{size})");
        assert_eq!(chunker("size-3000000").unwrap_err(), "chunker parameters may not exceed the maximum chunk size of 2096896");
        assert_eq!(chunker("size-99999999999999999999").unwrap_err(), "strconv.Atoi: parsing \"99999999999999999999\": value out of range");
        assert_eq!(chunker("rabin-8-32-64").unwrap_err(), "rabin min must be greater than 16");
        assert_eq!(chunker("rabin-32-16-64").unwrap_err(), "incorrect format: rabin-min must be smaller than rabin-avg");
        assert_eq!(chunker("rabin-x:16-32-64").unwrap_err(), "first label must be min");
        assert!(chunker("rabin-1-2-3-4").unwrap_err().starts_with("incorrect format (expected"));
        assert_eq!(chunker("rabin-1400000").unwrap_err(), size_max());
    }

    #[test]
    fn hash_names_are_go_multihashs() {
        for n in ["sha2-256", "blake2b-256", "blake2s-8", "blake3", "identity"] {
            assert!(hash_known(n), "{n}");
        }
        for n in ["sha256", "blake2b-0", "blake2b-520", "blake2b-255", "blake2b-08", "SHA2-256", ""] {
            assert!(!hash_known(n), "{n}");
        }
    }
}
