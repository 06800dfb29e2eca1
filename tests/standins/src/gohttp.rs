//! A small HTTP/1.1 server whose bytes on the wire are those of Go's `net/http`
//! server (Go 1.26, server.go / transfer.go / header.go), which both Kubo and
//! ipfs-cluster v1.1.6 use. Reproduced on purpose:
//! * `response.WriteHeader` snapshots the header map (`cw.header = handlerHeader.Clone()`);
//!   later header changes only matter for declared trailers.
//! * the 2048-byte `bufferBeforeChunkingSize` buffer: a handler that ends before
//!   flushing and before 2048 bytes gets `Content-Length` (unless a `Trailer` is declared),
//!   otherwise `Transfer-Encoding: chunked`, one chunk per buffer flush / `Flush()`.
//! * header order: handler headers sorted by key, then Date, Content-Length,
//!   Connection, Transfer-Encoding (`extraHeader.Write`).
//! * trailers declared with `Trailer:` written after the `0\r\n` chunk.
//! * the unread-request-body rule of `chunkWriter.writeHeader` (discard up to 256 KiB or
//!   add `Connection: close`) and `Expect: 100-continue`.
//! * keep-alive unless `Connection: close` was sent.

use crate::dag::{GoErr, GoRead};
use crate::gofmt;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;

/// server.go maxPostHandlerReadBytes.
const MAX_POST_HANDLER_READ_BYTES: u64 = 256 << 10;
/// server.go bufferBeforeChunkingSize.
const BUFFER_BEFORE_CHUNKING: usize = 2048;

/// Go `http.Header`: canonical keys, sorted when written (BTreeMap order = Go's
/// `sort.Strings` order on keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header(pub BTreeMap<String, Vec<String>>);

impl Header {
    pub fn set(&mut self, k: &str, v: &str) {
        self.0.insert(gofmt::canonical_key(k), vec![v.to_string()]);
    }
    pub fn add(&mut self, k: &str, v: &str) {
        self.0.entry(gofmt::canonical_key(k)).or_default().push(v.to_string());
    }
    pub fn get(&self, k: &str) -> &str {
        self.0.get(&gofmt::canonical_key(k)).and_then(|v| v.first()).map(|s| s.as_str()).unwrap_or("")
    }
    pub fn has(&self, k: &str) -> bool {
        self.0.contains_key(&gofmt::canonical_key(k))
    }
    pub fn del(&mut self, k: &str) {
        self.0.remove(&gofmt::canonical_key(k));
    }
    /// `Header.writeSubset`: sorted, newlines in values become spaces, values trimmed.
    fn write_subset(&self, out: &mut Vec<u8>, exclude: &[&str]) {
        for (k, vs) in &self.0 {
            if exclude.contains(&k.as_str()) {
                continue;
            }
            for v in vs {
                let v = v.replace(['\r', '\n'], " ");
                let v = v.trim_matches(|c| c == ' ' || c == '\t' || c == '\n' || c == '\r');
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

pub fn status_text(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        _ => "",
    }
}

fn body_allowed_for_status(code: u16) -> bool {
    !((100..200).contains(&code) || code == 204 || code == 304)
}

/// `conn.bufr`: a 4 KiB buffered reader over the socket.
pub struct ConnReader {
    stream: TcpStream,
    buf: Vec<u8>,
    r: usize,
    w: usize,
}

impl ConnReader {
    pub fn new(stream: TcpStream) -> Self {
        ConnReader { stream, buf: vec![0; 4096], r: 0, w: 0 }
    }
    fn fill(&mut self) -> io::Result<usize> {
        if self.r > 0 {
            self.buf.copy_within(self.r..self.w, 0);
            self.w -= self.r;
            self.r = 0;
        }
        if self.w == self.buf.len() {
            return Ok(0);
        }
        let n = self.stream.read(&mut self.buf[self.w..])?;
        self.w += n;
        Ok(n)
    }
    /// One line including "\n" (None at EOF before any byte); lines over 1 MiB fail.
    pub fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            if let Some(i) = self.buf[self.r..self.w].iter().position(|&c| c == b'\n') {
                line.extend_from_slice(&self.buf[self.r..self.r + i + 1]);
                self.r += i + 1;
                return Ok(Some(line));
            }
            line.extend_from_slice(&self.buf[self.r..self.w]);
            self.r = self.w;
            if line.len() > 1 << 20 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                return Ok(if line.is_empty() { None } else { Some(line) });
            }
        }
    }
    /// Like bufio.Reader.Read: buffered bytes first, else one read.
    fn read_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.r == self.w {
            if out.len() >= self.buf.len() {
                return self.stream.read(out);
            }
            self.r = 0;
            self.w = 0;
            if self.fill()? == 0 {
                return Ok(0);
            }
        }
        let n = out.len().min(self.w - self.r);
        out[..n].copy_from_slice(&self.buf[self.r..self.r + n]);
        self.r += n;
        Ok(n)
    }
    fn buffered(&self) -> &[u8] {
        &self.buf[self.r..self.w]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    NoBody,
    Length(u64),
    /// remaining bytes of the current chunk (0 = a chunk header is due), done flag.
    Chunked { left: u64, need_crlf: bool },
}

/// The request body (`*http.body`), shared by the handler's multipart reader and the
/// response (which may discard it, server.go `writeHeader`).
pub struct Body {
    pub conn: ConnReader,
    kind: BodyKind,
    pub saw_eof: bool,
    closed: bool,
    /// `Expect: 100-continue` was asked for.
    expect_continue: bool,
    continue_sent: bool,
    /// Set once the response header is on the wire (no 100 Continue after that).
    response_started: Rc<Cell<bool>>,
    writer: TcpStream,
}

impl Body {
    /// Bytes left according to Content-Length (`unreadDataSizeLocked`), -1 if unknown.
    fn unread_size(&self) -> i64 {
        match self.kind {
            BodyKind::Length(n) => n as i64,
            BodyKind::NoBody => 0,
            BodyKind::Chunked { .. } => -1,
        }
    }

    fn maybe_continue(&mut self) {
        if self.expect_continue && !self.continue_sent && !self.response_started.get() {
            self.continue_sent = true;
            let _ = self.writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
        if self.closed {
            return (0, Some(GoErr::Msg("http: invalid Read on closed Body".into())));
        }
        if self.saw_eof {
            return (0, Some(GoErr::Eof));
        }
        self.maybe_continue();
        match self.kind {
            BodyKind::NoBody => {
                self.saw_eof = true;
                (0, Some(GoErr::Eof))
            }
            BodyKind::Length(left) => {
                if left == 0 {
                    self.saw_eof = true;
                    return (0, Some(GoErr::Eof));
                }
                let want = (buf.len() as u64).min(left) as usize;
                match self.conn.read_some(&mut buf[..want]) {
                    Ok(0) | Err(_) => (0, Some(GoErr::UnexpectedEof)),
                    Ok(n) => {
                        self.kind = BodyKind::Length(left - n as u64);
                        if left - n as u64 == 0 {
                            // transfer.go body.readLocked: EOF with the last bytes.
                            self.saw_eof = true;
                            (n, Some(GoErr::Eof))
                        } else {
                            (n, None)
                        }
                    }
                }
            }
            BodyKind::Chunked { .. } => self.read_chunked(buf),
        }
    }

    fn chunk_header(&mut self) -> Result<u64, GoErr> {
        let line = match self.conn.read_line() {
            Ok(Some(l)) => l,
            _ => return Err(GoErr::UnexpectedEof),
        };
        if !line.ends_with(b"\n") {
            return Err(GoErr::UnexpectedEof);
        }
        let line = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n")).unwrap_or(&line);
        let size_part = line.split(|&c| c == b';').next().unwrap_or(b"");
        let size_part: &[u8] = {
            let s = size_part;
            let end = s.iter().rposition(|c| *c != b' ' && *c != b'\t').map(|i| i + 1).unwrap_or(0);
            &s[..end]
        };
        if size_part.is_empty() || size_part.len() > 16 || !size_part.iter().all(|c| c.is_ascii_hexdigit()) {
            return Err(GoErr::Msg("invalid byte in chunk length".into()));
        }
        Ok(u64::from_str_radix(std::str::from_utf8(size_part).unwrap_or("0"), 16).unwrap_or(0))
    }

    fn finish_chunked(&mut self) -> Result<(), GoErr> {
        // Trailer section up to the empty line.
        loop {
            match self.conn.read_line() {
                Ok(Some(l)) if l == b"\r\n" || l == b"\n" => return Ok(()),
                Ok(Some(_)) => continue,
                _ => return Err(GoErr::UnexpectedEof),
            }
        }
    }

    fn read_chunked(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
        let BodyKind::Chunked { mut left, mut need_crlf } = self.kind else { unreachable!() };
        if need_crlf {
            match self.conn.read_line() {
                Ok(Some(l)) if l == b"\r\n" || l == b"\n" => need_crlf = false,
                Ok(Some(_)) => return (0, Some(GoErr::Msg("malformed chunked encoding".into()))),
                _ => return (0, Some(GoErr::UnexpectedEof)),
            }
        }
        if left == 0 {
            match self.chunk_header() {
                Err(e) => return (0, Some(e)),
                Ok(0) => {
                    self.kind = BodyKind::Chunked { left: 0, need_crlf: false };
                    if let Err(e) = self.finish_chunked() {
                        return (0, Some(e));
                    }
                    self.saw_eof = true;
                    return (0, Some(GoErr::Eof));
                }
                Ok(n) => left = n,
            }
        }
        let want = (buf.len() as u64).min(left) as usize;
        let n = match self.conn.read_some(&mut buf[..want]) {
            Ok(0) | Err(_) => return (0, Some(GoErr::UnexpectedEof)),
            Ok(n) => n,
        };
        left -= n as u64;
        if left == 0 {
            need_crlf = true;
        }
        self.kind = BodyKind::Chunked { left, need_crlf };
        // internal/chunked.go: when the last chunk header is already buffered, the
        // read that returns the last data also returns EOF.
        if left == 0 && self.conn.buffered().starts_with(b"\r\n0\r\n\r\n") {
            self.conn.r += 7;
            self.kind = BodyKind::Chunked { left: 0, need_crlf: false };
            self.saw_eof = true;
            return (n, Some(GoErr::Eof));
        }
        (n, None)
    }
}

/// The body as the handler sees it (`r.Body`).
#[derive(Clone)]
pub struct BodyHandle(pub Rc<RefCell<Body>>);

impl GoRead for BodyHandle {
    fn go_read(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
        self.0.borrow_mut().read_inner(buf)
    }
}

/// A parsed request.
pub struct Request {
    pub method: String,
    /// Decoded path (`r.URL.Path`).
    pub path: String,
    pub raw_query: String,
    pub proto11: bool,
    pub header: Header,
    /// -1 chunked, 0 no body, n Content-Length.
    pub content_length: i64,
    pub wants_close: bool,
    pub body: BodyHandle,
}

impl Request {
    pub fn query(&self) -> Vec<(String, Vec<String>)> {
        gofmt::parse_query(&self.raw_query)
    }
    /// `r.Body != http.NoBody`
    pub fn has_body(&self) -> bool {
        self.content_length != 0
    }
}

pub enum ReadResult {
    Req(Request),
    /// Connection ended cleanly between requests.
    Closed,
    /// Malformed request: answer Go's plain 400 and close.
    Bad(String),
}

fn percent_decode_path(p: &str) -> Option<String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = (*b.get(i + 1)? as char).to_digit(16)?;
            let l = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Read one request head (server.go `readRequest`, simplified to what clients send).
pub fn read_request(mut conn: ConnReader, writer: &TcpStream, started: Rc<Cell<bool>>) -> (ReadResult, Option<ConnReader>) {
    let line = match conn.read_line() {
        Ok(Some(l)) => l,
        _ => return (ReadResult::Closed, None),
    };
    let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(uri), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return (ReadResult::Bad("malformed HTTP request".into()), Some(conn));
    };
    let proto11 = match proto {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return (ReadResult::Bad("malformed HTTP version".into()), Some(conn)),
    };
    let mut header = Header::default();
    let mut last_key: Option<String> = None;
    loop {
        let l = match conn.read_line() {
            Ok(Some(l)) => l,
            _ => return (ReadResult::Closed, None),
        };
        let l = l.strip_suffix(b"\n").unwrap_or(&l);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.is_empty() {
            break;
        }
        if (l[0] == b' ' || l[0] == b'\t') && last_key.is_some() {
            let k = last_key.clone().unwrap();
            if let Some(v) = header.0.get_mut(&k).and_then(|v| v.last_mut()) {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(l).trim());
            }
            continue;
        }
        let Some(i) = l.iter().position(|&c| c == b':') else {
            return (ReadResult::Bad("malformed MIME header line".into()), Some(conn));
        };
        let (k, ok) = gofmt::canonical_key_checked(&l[..i]);
        if !ok {
            return (ReadResult::Bad("malformed MIME header line".into()), Some(conn));
        }
        let v = String::from_utf8_lossy(&l[i + 1..]).trim_matches([' ', '\t']).to_string();
        header.0.entry(k.clone()).or_default().push(v);
        last_key = Some(k);
    }
    if proto11 && !header.has("Host") {
        return (ReadResult::Bad("missing required Host header".into()), Some(conn));
    }
    let (path_raw, raw_query) = match uri.split_once('?') {
        Some((p, q)) => (p, q.to_string()),
        None => (uri, String::new()),
    };
    let path_raw = if let Some(rest) = path_raw.strip_prefix("http://") {
        rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
    } else {
        path_raw
    };
    let Some(path) = percent_decode_path(path_raw) else {
        return (ReadResult::Bad("invalid URL escape".into()), Some(conn));
    };
    let te = header.get("Transfer-Encoding").to_ascii_lowercase();
    let (kind, content_length) = if te == "chunked" {
        (BodyKind::Chunked { left: 0, need_crlf: false }, -1)
    } else if !te.is_empty() {
        return (ReadResult::Bad(format!("unsupported transfer encoding: {:?}", te)), Some(conn));
    } else if header.has("Content-Length") {
        match header.get("Content-Length").trim().parse::<u64>() {
            Ok(0) => (BodyKind::NoBody, 0),
            Ok(n) => (BodyKind::Length(n), n as i64),
            Err(_) => return (ReadResult::Bad("bad Content-Length".into()), Some(conn)),
        }
    } else {
        (BodyKind::NoBody, 0)
    };
    let conn_hdr = header.get("Connection").to_ascii_lowercase();
    let wants_close = conn_hdr.split(',').any(|t| t.trim() == "close") || (!proto11 && !conn_hdr.contains("keep-alive"));
    let expect_continue = proto11 && header.get("Expect").eq_ignore_ascii_case("100-continue") && content_length != 0;
    let body = Body {
        conn,
        kind,
        saw_eof: content_length == 0,
        closed: false,
        expect_continue,
        continue_sent: false,
        response_started: started,
        writer: writer.try_clone().expect("clone socket"),
    };
    (
        ReadResult::Req(Request {
            method: method.to_string(),
            path,
            raw_query,
            proto11,
            header,
            content_length,
            wants_close,
            body: BodyHandle(Rc::new(RefCell::new(body))),
        }),
        None,
    )
}

/// Go's `*http.response` + `chunkWriter` for one request.
pub struct GoResponse {
    stream: TcpStream,
    /// `w.Header()` (handlerHeader).
    pub header: Header,
    snapshot: Option<Header>,
    wrote_header: bool,
    pub status: u16,
    cw_wrote_header: bool,
    chunking: bool,
    trailers: Vec<String>,
    buf: Vec<u8>,
    handler_done: bool,
    content_length: i64,
    written: i64,
    pub close_after_reply: bool,
    method: String,
    proto11: bool,
    wants_close: bool,
    req_content_length: i64,
    body: BodyHandle,
    started: Rc<Cell<bool>>,
    wire: Vec<u8>,
    /// The socket is gone (client closed); further output is dropped.
    broken: bool,
}

impl GoResponse {
    pub fn new(stream: &TcpStream, req: &Request, started: Rc<Cell<bool>>) -> Self {
        GoResponse {
            stream: stream.try_clone().expect("clone socket"),
            header: Header::default(),
            snapshot: None,
            wrote_header: false,
            status: 0,
            cw_wrote_header: false,
            chunking: false,
            trailers: Vec::new(),
            buf: Vec::with_capacity(BUFFER_BEFORE_CHUNKING),
            handler_done: false,
            content_length: -1,
            written: 0,
            close_after_reply: false,
            method: req.method.clone(),
            proto11: req.proto11,
            wants_close: req.wants_close,
            req_content_length: req.content_length,
            body: req.body.clone(),
            started,
            wire: Vec::new(),
            broken: false,
        }
    }

    /// `response.WriteHeader`: a second call is ignored ("superfluous WriteHeader").
    pub fn write_header(&mut self, code: u16) {
        if self.wrote_header {
            return;
        }
        self.wrote_header = true;
        self.status = code;
        self.snapshot = Some(self.header.clone());
        let cl = self.header.get("Content-Length").to_string();
        if !cl.is_empty() {
            match cl.parse::<i64>() {
                Ok(v) if v >= 0 => self.content_length = v,
                _ => self.header.del("Content-Length"),
            }
        }
    }

    /// `response.Write`.
    pub fn write(&mut self, data: &[u8]) {
        if !self.wrote_header {
            self.write_header(200);
        }
        if data.is_empty() || !body_allowed_for_status(self.status) {
            return;
        }
        self.written += data.len() as i64;
        if self.content_length != -1 && self.written > self.content_length {
            return; // ErrContentLength
        }
        // bufio.Writer.Write over the chunkWriter.
        let mut p = data;
        while p.len() > BUFFER_BEFORE_CHUNKING - self.buf.len() {
            if self.buf.is_empty() {
                self.cw_write(p);
                p = &[];
            } else {
                let n = BUFFER_BEFORE_CHUNKING - self.buf.len();
                self.buf.extend_from_slice(&p[..n]);
                p = &p[n..];
                self.bufio_flush();
            }
        }
        self.buf.extend_from_slice(p);
    }

    fn bufio_flush(&mut self) {
        if !self.buf.is_empty() {
            let b = std::mem::take(&mut self.buf);
            self.cw_write(&b);
            self.buf = Vec::with_capacity(BUFFER_BEFORE_CHUNKING);
        }
    }

    fn cw_write(&mut self, p: &[u8]) {
        if !self.cw_wrote_header {
            self.cw_write_header(p);
        }
        if self.method == "HEAD" {
            return;
        }
        if self.chunking {
            self.wire.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        }
        self.wire.extend_from_slice(p);
        if self.chunking {
            self.wire.extend_from_slice(b"\r\n");
        }
        if self.wire.len() >= 4096 {
            self.send_wire();
        }
    }

    fn send_wire(&mut self) {
        if self.wire.is_empty() {
            return;
        }
        if !self.broken && self.stream.write_all(&self.wire).is_err() {
            self.broken = true;
        }
        self.wire.clear();
    }

    /// `chunkWriter.writeHeader(p)`.
    fn cw_write_header(&mut self, p: &[u8]) {
        self.cw_wrote_header = true;
        self.started.set(true);
        let header = self.snapshot.clone().unwrap_or_else(|| self.header.clone());
        let mut exclude: Vec<&str> = Vec::new();
        let mut set_cl: Option<usize> = None;
        let mut set_conn: Option<&str> = None;
        let mut set_te: Option<&str> = None;
        let is_head = self.method == "HEAD";

        let mut trailers = false;
        if let Some(vs) = header.0.get("Trailer") {
            for v in vs {
                for t in v.split(',') {
                    let t = t.trim();
                    if t.is_empty() {
                        continue;
                    }
                    trailers = true;
                    let k = gofmt::canonical_key(t);
                    if k != "Content-Length" && k != "Transfer-Encoding" && k != "Trailer" {
                        self.trailers.push(k);
                    }
                }
            }
        }
        let te = header.get("Transfer-Encoding").to_string();
        let has_te = !te.is_empty();
        if self.handler_done
            && !trailers
            && !has_te
            && body_allowed_for_status(self.status)
            && !header.has("Content-Length")
            && (!is_head || !p.is_empty())
        {
            self.content_length = p.len() as i64;
            set_cl = Some(p.len());
        }
        if !self.proto11 || self.wants_close {
            self.close_after_reply = true;
        }
        if header.get("Connection") == "close" {
            self.close_after_reply = true;
        }
        let mut body = self.body.0.borrow_mut();
        if body.expect_continue && !body.saw_eof {
            self.close_after_reply = true;
        }
        if self.req_content_length != 0 && !self.close_after_reply {
            let mut discard = false;
            let mut too_big = false;
            if body.expect_continue {
                discard = body.continue_sent;
            } else if body.closed {
                if !body.saw_eof {
                    self.close_after_reply = true;
                }
            } else if body.unread_size() >= MAX_POST_HANDLER_READ_BYTES as i64 {
                too_big = true;
            } else {
                discard = true;
            }
            if discard {
                let mut left = MAX_POST_HANDLER_READ_BYTES + 1;
                let mut scratch = vec![0u8; 8192];
                let mut outcome: Option<GoErr> = None;
                while left > 0 {
                    let want = (scratch.len() as u64).min(left) as usize;
                    let (n, e) = body.read_inner(&mut scratch[..want]);
                    left -= n as u64;
                    if let Some(e) = e {
                        outcome = Some(e);
                        break;
                    }
                }
                match outcome {
                    None => too_big = true,
                    Some(GoErr::Eof) => body.closed = true,
                    Some(GoErr::Msg(m)) if m == "http: invalid Read on closed Body" => {}
                    Some(_) => self.close_after_reply = true,
                }
            }
            if too_big {
                self.close_after_reply = true;
                exclude.push("Connection");
                set_conn = Some("close");
            }
        }
        drop(body);
        let date = if header.has("Date") { None } else { Some(gofmt::http_date_now()) };
        if is_head || !body_allowed_for_status(self.status) {
        } else if self.status == 204 || self.content_length != -1 {
            // Go's two branches (204, then a declared length) do the same.
            exclude.push("Transfer-Encoding");
        } else if self.proto11 {
            self.chunking = true;
            set_te = Some("chunked");
        } else {
            self.close_after_reply = true;
            exclude.push("Transfer-Encoding");
        }
        if self.chunking {
            exclude.push("Content-Length");
        }
        let has_close_token =
            header.get("Connection").split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
        if self.close_after_reply && !has_close_token {
            exclude.push("Connection");
            if self.proto11 {
                set_conn = Some("close");
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(if self.proto11 { b"HTTP/1.1 " } else { b"HTTP/1.0 " });
        out.extend_from_slice(format!("{} {}\r\n", self.status, status_text(self.status)).as_bytes());
        header.write_subset(&mut out, &exclude);
        if let Some(d) = date {
            out.extend_from_slice(format!("Date: {}\r\n", d).as_bytes());
        }
        if let Some(n) = set_cl {
            out.extend_from_slice(format!("Content-Length: {}\r\n", n).as_bytes());
        }
        if let Some(c) = set_conn {
            out.extend_from_slice(format!("Connection: {}\r\n", c).as_bytes());
        }
        if let Some(t) = set_te {
            out.extend_from_slice(format!("Transfer-Encoding: {}\r\n", t).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        self.wire.extend_from_slice(&out);
    }

    /// `http.Flusher.Flush`.
    pub fn flush(&mut self) {
        if !self.wrote_header {
            self.write_header(200);
        }
        self.bufio_flush();
        if !self.cw_wrote_header {
            self.cw_write_header(&[]);
        }
        self.send_wire();
    }

    /// `response.finishRequest` (handler returned). Returns whether the connection may be
    /// reused.
    pub fn finish(mut self) -> bool {
        self.handler_done = true;
        if !self.wrote_header {
            self.write_header(200);
        }
        self.bufio_flush();
        if !self.cw_wrote_header {
            self.cw_write_header(&[]);
        }
        if self.chunking {
            self.wire.extend_from_slice(b"0\r\n");
            let mut t = Header::default();
            for k in &self.trailers {
                if let Some(vs) = self.header.0.get(k) {
                    for v in vs {
                        t.add(k, v);
                    }
                }
            }
            t.write_subset(&mut self.wire, &[]);
            self.wire.extend_from_slice(b"\r\n");
        }
        self.send_wire();
        let _ = self.stream.flush();
        if self.broken || self.close_after_reply {
            return false;
        }
        if self.method != "HEAD" && self.content_length != -1 && body_allowed_for_status(self.status) && self.content_length != self.written {
            return false;
        }
        // body.Close on a server request: drain up to 256 KiB to reuse the connection.
        let mut body = self.body.0.borrow_mut();
        if body.closed || body.saw_eof {
            return !body.closed || body.saw_eof;
        }
        if body.unread_size() > MAX_POST_HANDLER_READ_BYTES as i64 {
            return false;
        }
        let mut left = MAX_POST_HANDLER_READ_BYTES;
        let mut scratch = vec![0u8; 8192];
        while left > 0 {
            let want = (scratch.len() as u64).min(left) as usize;
            let (n, e) = body.read_inner(&mut scratch[..want]);
            left -= n as u64;
            match e {
                Some(GoErr::Eof) => return true,
                Some(_) => return false,
                None => {}
            }
        }
        false
    }

    /// The response bytes already produced could not be sent; abort without a reply
    /// (what a panicking Go handler does before anything was flushed).
    pub fn abort(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Go `http.Error`: deletes Content-Length, sets text/plain + nosniff, writes msg + "\n".
pub fn http_error(w: &mut GoResponse, msg: &str, code: u16) {
    w.header.del("Content-Length");
    w.header.set("Content-Type", "text/plain; charset=utf-8");
    w.header.set("X-Content-Type-Options", "nosniff");
    w.write_header(code);
    w.write(format!("{}\n", msg).as_bytes());
}

/// server.go: a request that cannot be parsed is answered with this and the connection
/// is closed.
pub fn write_bad_request(stream: &mut TcpStream, reason: &str) {
    let body = format!("400 Bad Request: {}", reason);
    let _ = stream.write_all(
        format!("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{}", body)
            .as_bytes(),
    );
}

/// Serve one connection: `handler(req, resp)` per request, keep-alive as Go does.
pub fn serve_conn(stream: TcpStream, handler: &dyn Fn(&Request, &mut GoResponse) -> HandlerOutcome) {
    let mut conn = ConnReader::new(stream.try_clone().expect("clone socket"));
    let mut writer = stream;
    loop {
        let started = Rc::new(Cell::new(false));
        let (res, back) = read_request(conn, &writer, started.clone());
        let req = match res {
            ReadResult::Closed => return,
            ReadResult::Bad(reason) => {
                write_bad_request(&mut writer, &reason);
                let _ = back;
                return;
            }
            ReadResult::Req(r) => r,
        };
        let mut resp = GoResponse::new(&writer, &req, started);
        let outcome = handler(&req, &mut resp);
        let reuse = match outcome {
            HandlerOutcome::Done => resp.finish(),
            HandlerOutcome::Abort => {
                resp.abort();
                false
            }
        };
        if !reuse {
            let _ = writer.flush();
            let _ = writer.shutdown(std::net::Shutdown::Write);
            // Let the client read what was sent before the socket goes away.
            let mut sink = [0u8; 4096];
            let _ = writer.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            let mut b = req.body.0.borrow_mut();
            while let Ok(n) = b.conn.stream.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            return;
        }
        let body = match Rc::try_unwrap(req.body.0) {
            Ok(b) => b.into_inner(),
            Err(_) => return,
        };
        conn = body.conn;
    }
}

pub enum HandlerOutcome {
    Done,
    /// Close the connection without finishing the response (Go handler panic).
    Abort,
}
