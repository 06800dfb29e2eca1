//! Multipart upload bodies in the shapes real clients send: kubo-rpc-client
//! and the `ipfs` CLI (go-ipfs-files): one part per file or directory,
//! `filename` percent-encoded, directories as `application/x-directory`.

pub const BOUNDARY: &str = "------------------------edgetestboundary";

pub fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
}

/// The body for `entries`, in order.
pub fn body(entries: &[Entry]) -> Vec<u8> {
    let mut b = Vec::new();
    for e in entries {
        b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match e {
            Entry::File(name, data) => {
                b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                        encode(name)
                    )
                    .as_bytes(),
                );
                b.extend_from_slice(data);
            }
            Entry::Dir(name) => {
                b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/x-directory\r\n\r\n",
                        encode(name)
                    )
                    .as_bytes(),
                );
            }
        }
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// encodeURIComponent, as kubo-rpc-client encodes file names.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for &c in name.as_bytes() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                out.push(c as char)
            }
            _ => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}

/// Deterministic pseudo-random content (xorshift), so large files need no
/// fixtures and differ in every chunk.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
