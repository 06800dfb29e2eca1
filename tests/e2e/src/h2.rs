//! A raw HTTP/2 client over cleartext with prior knowledge (h2c), one
//! request per connection: like `http.rs`, nothing between the test and the
//! wire, so `:path` goes out byte for byte (no URL parsing or
//! normalisation a client library would do). Request headers are encoded as
//! HPACK literals (no Huffman, no indexing); responses are decoded with
//! `fluke-hpack`, since Envoy Huffman-codes its answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::edge::Answer;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// Sends one request (stream 1) and reads its answer. `Err` when Envoy
/// resets the stream or closes the connection instead of answering (its
/// codec refusing a malformed request), with the reason.
pub fn exchange(port: u16, method: &str, authority: &str, path: &[u8], headers: &[(String, String)], body: &[u8]) -> Result<Answer, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    let mut block = Vec::new();
    literal(&mut block, b":method", method.as_bytes());
    literal(&mut block, b":scheme", b"http");
    literal(&mut block, b":authority", authority.as_bytes());
    literal(&mut block, b":path", path);
    for (k, v) in headers {
        // HTTP/2 header names are lowercase on the wire.
        literal(&mut block, k.to_ascii_lowercase().as_bytes(), v.as_bytes());
    }
    let flags = if body.is_empty() { END_HEADERS | END_STREAM } else { END_HEADERS };
    frame(&mut out, HEADERS, flags, 1, &block);
    if !body.is_empty() {
        frame(&mut out, DATA, END_STREAM, 1, body);
    }
    s.write_all(&out).map_err(|e| e.to_string())?;

    let mut decoder = fluke_hpack::Decoder::new();
    let mut block = Vec::new();
    let mut status = None;
    let mut resp_headers = Vec::new();
    let mut resp_body = Vec::new();
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).map_err(|e| format!("connection closed before the answer: {e}"))?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).map_err(|e| e.to_string())?;
        match kind {
            SETTINGS if flags & 1 == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, SETTINGS, 1, 0, &[]);
                s.write_all(&ack).map_err(|e| e.to_string())?;
            }
            PING if flags & 1 == 0 => {
                let mut pong = Vec::new();
                frame(&mut pong, PING, 1, 0, &payload);
                s.write_all(&pong).map_err(|e| e.to_string())?;
            }
            GOAWAY => {
                let code = payload.get(4..8).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                return Err(format!("GOAWAY {code}"));
            }
            RST_STREAM if stream == 1 => {
                let code = payload.get(..4).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                return Err(format!("RST_STREAM {code}"));
            }
            HEADERS | CONTINUATION if stream == 1 => {
                let mut p = &payload[..];
                if kind == HEADERS {
                    let pad = if flags & PADDED != 0 {
                        let n = usize::from(*p.first().ok_or("bad padding")?);
                        p = &p[1..];
                        n
                    } else {
                        0
                    };
                    if flags & PRIORITY != 0 {
                        p = p.get(5..).ok_or("bad priority")?;
                    }
                    p = p.get(..p.len().checked_sub(pad).ok_or("bad padding")?).ok_or("bad padding")?;
                }
                block.extend_from_slice(p);
                if flags & END_HEADERS != 0 {
                    let list = decoder.decode(&block).map_err(|e| format!("HPACK: {e:?}"))?;
                    block.clear();
                    for (k, v) in list {
                        let (k, v) = (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned());
                        if k == ":status" {
                            status = v.parse().ok();
                        } else if status.is_some() {
                            resp_headers.push((k, v));
                        }
                    }
                }
                if flags & END_STREAM != 0 {
                    break;
                }
            }
            DATA if stream == 1 => {
                let p = if flags & PADDED != 0 {
                    let n = usize::from(payload[0]);
                    &payload[1..payload.len() - n]
                } else {
                    &payload[..]
                };
                resp_body.extend_from_slice(p);
                if flags & END_STREAM != 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    let status = status.ok_or("no :status")?;
    Ok(Answer { status, headers: resp_headers, body: resp_body })
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2).
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    string(out, name);
    string(out, value);
}

/// A string literal without Huffman coding: length with a 7-bit prefix.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_decode_back() {
        let mut block = Vec::new();
        let long = vec![b'a'; 1000];
        literal(&mut block, b":path", b"/api/v0/%2e%2e");
        literal(&mut block, b"x", &long);
        let got = fluke_hpack::Decoder::new().decode(&block).unwrap();
        assert_eq!(got, vec![(b":path".to_vec(), b"/api/v0/%2e%2e".to_vec()), (b"x".to_vec(), long)]);
    }
}
