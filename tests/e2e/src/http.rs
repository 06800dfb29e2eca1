//! A raw HTTP/1.1 client: the tests compare bytes, so no library sits
//! between them and the wire. Requests are sent exactly as given; responses
//! are parsed (chunked or not) but the raw bytes are kept too.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header lines as received (name, value).
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub chunked: bool,
    pub raw: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Everything a client acts on, in order, as text: status, headers
    /// without `Date` and the framing Envoy chooses itself
    /// (`content-length`, `transfer-encoding`, `connection`), the body and
    /// the trailers. Two responses with equal `semantic()` are the same
    /// answer byte for byte in every field a client reads.
    pub fn semantic(&self) -> String {
        let mut s = format!("{}\n", self.status);
        for (k, v) in &self.headers {
            let lk = k.to_ascii_lowercase();
            if matches!(lk.as_str(), "date" | "content-length" | "transfer-encoding" | "connection") {
                continue;
            }
            s.push_str(&format!("{lk}: {v}\n"));
        }
        s.push('\n');
        s.push_str(&String::from_utf8_lossy(&self.body));
        for (k, v) in &self.trailers {
            s.push_str(&format!("[trailer] {}: {v}\n", k.to_ascii_lowercase()));
        }
        s
    }

    /// The body's lines (NDJSON).
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.body).lines().map(str::to_string).collect()
    }
}

/// Sends `request` (complete bytes) and reads the whole response; the
/// request should say `Connection: close`.
pub fn exchange(port: u16, request: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(request)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| {
        // The head and the end are what tell a broken stream apart.
        let text = String::from_utf8_lossy(&raw);
        let (head, tail) = (&text[..text.len().min(600)], &text[text.len().saturating_sub(300)..]);
        std::io::Error::other(format!("unparseable response ({} bytes): {head:?} ... {tail:?}", raw.len()))
    })
}

pub fn get(port: u16, path: &str) -> std::io::Result<Response> {
    exchange(port, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
}

/// A request with a body, as clients send it.
pub fn request(method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    request_to("127.0.0.1", method, target, content_type, body)
}

/// The same for the server named `host`.
pub fn request_to(host: &str, method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        r.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut v = r.into_bytes();
    v.extend_from_slice(body);
    v
}

/// Parses one complete HTTP/1.1 response.
pub fn parse(raw: &[u8]) -> Option<Response> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let mut rest = &raw[head_end + 4..];
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    let chunked = get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let line_end = find(rest, b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                // Trailers until the empty line.
                loop {
                    let end = find(rest, b"\r\n")?;
                    if end == 0 {
                        break;
                    }
                    let l = std::str::from_utf8(&rest[..end]).ok()?;
                    let (k, v) = l.split_once(':')?;
                    trailers.push((k.to_string(), v.trim().to_string()));
                    rest = &rest[end + 2..];
                }
                break;
            }
            body.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.extend_from_slice(rest.get(..len)?);
    } else {
        body.extend_from_slice(rest);
    }
    Some(Response { status, headers, body, trailers, chunked, raw: raw.to_vec() })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Server side, for the test backends: copies a request body framed by
/// `Content-Length` or chunked encoding from `r` into `out` as it arrives
/// (never holding it whole), skipping chunk extensions and trailers. The
/// number of body bytes, or `None` when the stream ended before the body
/// did. No length and not chunked: no body.
pub fn copy_body(r: &mut impl BufRead, content_length: Option<u64>, chunked: bool, out: &mut impl Write) -> std::io::Result<Option<u64>> {
    if !chunked {
        let want = content_length.unwrap_or(0);
        return Ok((copy_exact(r, want, out)? == want).then_some(want));
    }
    let mut total = 0;
    loop {
        let mut size = String::new();
        if r.read_line(&mut size)? == 0 {
            return Ok(None);
        }
        let n = u64::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if n == 0 {
            // Trailers until the empty line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t)? == 0 || t.trim_end().is_empty() {
                    return Ok(Some(total));
                }
            }
        }
        if copy_exact(r, n, out)? < n || copy_exact(r, 2, &mut std::io::sink())? < 2 {
            return Ok(None);
        }
        total += n;
    }
}

/// Copies up to `n` bytes straight from `r`'s buffer; fewer at the end of
/// the stream.
fn copy_exact(r: &mut impl BufRead, n: u64, out: &mut impl Write) -> std::io::Result<u64> {
    let mut left = n;
    while left > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let k = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        out.write_all(&buf[..k])?;
        r.consume(k);
        left -= k as u64;
    }
    Ok(n - left)
}
