//! The benchmarks' upstream: a keep-alive HTTP/1.1 server answering every request `200 ok`
//! at once (body read and dropped), so what a benchmark measures is the proxy in front of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// The answer, byte for byte (the clients read it by its `Content-Length`).
pub const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
/// Its body.
pub const BODY: &[u8] = b"ok\n";

/// Starts the server on a free port of 127.0.0.1; returns the port. It runs until the
/// process ends.
pub fn spawn() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let Some((_, len)) = read_head(&mut r) else { return };
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if w.write_all(ANSWER).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Reads a message head: its first line and its Content-Length (0 when absent). `None` at
/// the end of the connection. Chunked bodies are not read (neither the benchmarks' requests
/// nor the answers they read have one).
pub fn read_head(r: &mut impl BufRead) -> Option<(String, usize)> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Some((first, len));
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
}
