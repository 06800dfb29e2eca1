//! The proxy-wasm header-map encoding, as plain functions so the parsing of
//! host-provided bytes is tested here rather than trusted in the wrappers:
//! `u32 count`, then `count` pairs of `u32 name_len, u32 value_len`, then
//! each name and value followed by a NUL byte (all little-endian).

/// Decodes a serialized header map. Returns `None` for malformed input
/// instead of panicking (the SDK's own decoder unwraps, and its `String`
/// variant panics on a non-UTF-8 header value, which clients can send).
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let rd = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = rd(0)?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > bytes.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut at = sizes_end;
    for i in 0..count {
        let klen = rd(4 + i * 8)?;
        let vlen = rd(8 + i * 8)?;
        let k = bytes.get(at..at.checked_add(klen)?)?;
        at = at.checked_add(klen)?;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        let v = bytes.get(at..at.checked_add(vlen)?)?;
        at = at.checked_add(vlen)?;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        // Header names are tokens; a non-UTF-8 one is replaced, not fatal.
        out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
    }
    Some(out)
}

/// Encodes pairs in the same format (for local responses and tests).
pub fn encode_map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}
