//! A minimal upstream for the streaming tests and the benchmark: it reads
//! the whole request body as it arrives (never keeping it), hashes it, and
//! answers like the cluster proxy's streamed add (`X-Chunked-Output`, one
//! chunk per event), so the add filter is fully engaged on both sides.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use sha2::{Digest, Sha256};

/// What the sink answers after reading the body.
#[derive(Clone)]
pub enum Answer {
    /// One event; the body's SHA-256 and length in `x-sink-sha256` /
    /// `x-sink-bytes` headers.
    Digest,
    /// These NDJSON lines, one HTTP chunk each (the cluster flushes per
    /// event).
    Events(std::sync::Arc<Vec<Vec<u8>>>),
    /// These lines, each cut in two HTTP chunks sent apart in time, and no
    /// newline after the last one: Envoy hands the halves to the filter in
    /// separate callbacks.
    CutEvents(std::sync::Arc<Vec<Vec<u8>>>, Option<&'static str>),
}

pub fn spawn(answer: Answer) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind sink");
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let _ = serve(s, &answer);
            });
        }
    });
    addr
}

fn serve(s: TcpStream, answer: &Answer) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(256 * 1024, s.try_clone()?);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_ascii_lowercase());
        }
        let get = |n: &str| head.iter().find_map(|l| l.strip_prefix(n).map(|v| v.trim().to_string()));
        let mut hasher = Sha256::new();
        let length = get("content-length:").and_then(|v| v.parse::<u64>().ok());
        let chunked = length.is_none() && get("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
        let Some(total) = crate::http::copy_body(&mut r, length, chunked, &mut hasher)? else {
            return Ok(());
        };
        let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let mut w = s.try_clone()?;
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTrailer: X-Stream-Error\r\nX-Chunked-Output: 1\r\nX-Sink-Bytes: {total}\r\nX-Sink-Sha256: {digest}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        match answer {
            Answer::CutEvents(lines, trailer) => {
                w.write_all(&out)?;
                for l in lines.iter() {
                    let cut = l.len() / 2;
                    for half in [&l[..cut], &l[cut..]] {
                        if half.is_empty() {
                            continue;
                        }
                        w.write_all(format!("{:x}\r\n", half.len()).as_bytes())?;
                        w.write_all(half)?;
                        w.write_all(b"\r\n")?;
                        w.flush()?;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
                match trailer {
                    Some(t) => w.write_all(format!("0\r\nX-Stream-Error: {t}\r\n\r\n").as_bytes())?,
                    None => w.write_all(b"0\r\n\r\n")?,
                }
                w.flush()?;
                continue;
            }
            Answer::Digest => {
                let ev = b"{\"Name\":\"f\",\"Hash\":\"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH\",\"Size\":\"6\"}\n";
                out.extend_from_slice(format!("{:x}\r\n", ev.len()).as_bytes());
                out.extend_from_slice(ev);
                out.extend_from_slice(b"\r\n");
                w.write_all(&out)?;
            }
            Answer::Events(lines) => {
                w.write_all(&out)?;
                // Batched writes, one HTTP chunk per event, as Go's
                // per-event Flush produces them.
                let mut batch = Vec::with_capacity(64 * 1024);
                for l in lines.iter() {
                    batch.extend_from_slice(format!("{:x}\r\n", l.len()).as_bytes());
                    batch.extend_from_slice(l);
                    batch.extend_from_slice(b"\r\n");
                    if batch.len() > 60 * 1024 {
                        w.write_all(&batch)?;
                        batch.clear();
                    }
                }
                w.write_all(&batch)?;
            }
        }
        w.write_all(b"0\r\n\r\n")?;
        w.flush()?;
    }
}
