//! A streaming reader of the upload's multipart structure. It never holds
//! file content: it looks for boundaries and reads each part's headers, to
//! learn the names Kubo would print in progress events (which the cluster
//! leaves out, see `response.rs`). Memory: one boundary's worth of carry
//! plus one part-header block, capped.
//!
//! Names follow boxo files/multipartfile.go `fileName`: the
//! `Content-Disposition` `filename`, query-unescaped (kept raw when that
//! fails), cleaned as `path.Clean("/" + name)` and taken relative to `/`.

/// A part header block longer than this stops the tracking (Go's
/// `mime/multipart` limits header blocks to 10 MiB; real clients send a
/// few hundred bytes).
const MAX_HEADER_BLOCK: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Relative, cleaned path (`""` for an unnamed part).
    pub path: Vec<u8>,
    pub is_dir: bool,
    /// The error Go's `textproto.ReadMIMEHeader` gives for this header
    /// block, if it is malformed.
    pub malformed: Option<String>,
}

#[derive(Debug)]
enum State {
    /// Looking for the first delimiter (no leading CRLF needed there).
    Preamble,
    Headers,
    Body,
    Done,
    /// Lost track (malformed or oversized): names fall back to the
    /// cluster's own.
    Lost,
}

#[derive(Debug)]
pub struct Scanner {
    /// `\r\n--boundary`.
    delimiter: Vec<u8>,
    /// Its searcher, built once: the body is searched chunk after chunk.
    finder: memchr::memmem::Finder<'static>,
    /// The end of a header block.
    blank_line: memchr::memmem::Finder<'static>,
    /// Nothing consumed yet: the stream may open with a bare delimiter.
    at_start: bool,
    state: State,
    /// Bytes kept across chunks: a possible partial delimiter, or the
    /// header block read so far.
    carry: Vec<u8>,
}

/// The boundary parameter of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (media, params) = content_type.split_once(';')?;
    let media = media.trim().to_ascii_lowercase();
    if media != "multipart/form-data" && media != "multipart/mixed" {
        return None;
    }
    for p in params.split(';') {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            return (!v.is_empty() && v.len() <= 70).then(|| v.to_string());
        }
    }
    None
}

impl Scanner {
    pub fn new(boundary: &str) -> Scanner {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        let finder = memchr::memmem::Finder::new(&delimiter).into_owned();
        let blank_line = memchr::memmem::Finder::new(b"\r\n\r\n").into_owned();
        Scanner { delimiter, finder, blank_line, at_start: true, state: State::Preamble, carry: Vec::new() }
    }

    /// True once the structure can no longer be followed.
    pub fn lost(&self) -> bool {
        matches!(self.state, State::Lost)
    }

    /// Feeds the next chunk of the body; calls `on_part` for each part whose
    /// header block completes in it.
    pub fn feed(&mut self, chunk: &[u8], on_part: impl FnMut(Part)) {
        // Content passes without a copy; only what a previous chunk left
        // unfinished (a header block, a possible delimiter start) is joined.
        if self.carry.is_empty() {
            self.scan(chunk, on_part);
        } else {
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(chunk);
            self.scan(&buf, on_part);
        }
    }

    fn scan(&mut self, buf: &[u8], mut on_part: impl FnMut(Part)) {
        let mut i = 0;
        loop {
            match self.state {
                State::Done | State::Lost => {
                    self.carry.clear();
                    return;
                }
                State::Preamble | State::Body => {
                    // The first delimiter may start the body without CRLF.
                    let bare = &self.delimiter[2..];
                    let at_start = std::mem::take(&mut self.at_start) && i == 0;
                    if at_start && buf.len() < bare.len() && bare.starts_with(buf) {
                        self.at_start = true;
                        return self.keep_tail(buf, 0, buf.len());
                    }
                    let found = if at_start && buf.starts_with(bare) {
                        Some((0, bare.len()))
                    } else {
                        self.finder.find(&buf[i..]).map(|at| (i + at, self.delimiter.len()))
                    };
                    let Some((at, len)) = found else {
                        return self.keep_delimiter_start(&buf[i..]);
                    };
                    match delimiter_end(&buf[at + len..]) {
                        Boundary::Close => self.state = State::Done,
                        Boundary::Part(skip) => {
                            i = at + len + skip;
                            self.state = State::Headers;
                        }
                        // `--boundaryX`: content that looks like a delimiter.
                        Boundary::Not => i = at + 1,
                        Boundary::NeedMore => {
                            // A bare opening delimiter still counts as one
                            // when the next chunk completes its line.
                            self.at_start = at_start && at == 0;
                            return self.keep_tail(buf, at, buf.len() - at);
                        }
                    }
                }
                State::Headers => {
                    let rest = &buf[i..];
                    let end = if rest.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        self.blank_line.find(rest).map(|at| (at + 2, at + 4))
                    };
                    match end {
                        Some((block_end, skip)) => {
                            on_part(parse_headers(&rest[..block_end]));
                            i += skip;
                            self.state = State::Body;
                        }
                        None if rest.len() > MAX_HEADER_BLOCK => self.state = State::Lost,
                        None => return self.keep_tail(buf, i, rest.len()),
                    }
                }
            }
        }
    }

    /// Keeps the end of `rest` that could be the start of a delimiter
    /// finished by the next chunk (usually nothing: it must begin with CR).
    fn keep_delimiter_start(&mut self, rest: &[u8]) {
        let max = rest.len().min(self.delimiter.len() - 1);
        let keep = (1..=max).rev().find(|&k| rest.ends_with(&self.delimiter[..k])).unwrap_or(0);
        self.carry.clear();
        self.carry.extend_from_slice(&rest[rest.len() - keep..]);
    }

    /// Keeps at most `max` bytes from `buf[from..]` for the next chunk.
    fn keep_tail(&mut self, buf: &[u8], from: usize, max: usize) {
        let rest = &buf[from..];
        let keep = rest.len().min(max);
        self.carry.clear();
        self.carry.extend_from_slice(&rest[rest.len() - keep..]);
    }
}

enum Boundary {
    /// `--`: the closing delimiter.
    Close,
    /// Transport padding and the line end: headers start after `skip`.
    Part(usize),
    Not,
    NeedMore,
}

/// What follows `--boundary` decides whether it is a delimiter (Go's
/// `mime/multipart` `isBoundaryDelimiterLine`: optional spaces and tabs,
/// then the line end).
fn delimiter_end(rest: &[u8]) -> Boundary {
    if rest.starts_with(b"--") {
        return Boundary::Close;
    }
    for (j, &b) in rest.iter().enumerate() {
        match b {
            b'\n' => return Boundary::Part(j + 1),
            b' ' | b'\t' | b'\r' if j < 256 => {}
            b'-' if j == 0 && rest.len() == 1 => return Boundary::NeedMore,
            _ => return Boundary::Not,
        }
    }
    Boundary::NeedMore
}

/// Reads `Content-Disposition` and `Content-Type` from a header block.
fn parse_headers(block: &[u8]) -> Part {
    let mut filename: Option<Vec<u8>> = None;
    let mut is_dir = false;
    let mut malformed = None;
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Go 1.26 net/textproto `readMIMEHeader`.
            malformed.get_or_insert_with(|| {
                format!("malformed MIME header: missing colon: {}", super::checks::go_quote(&String::from_utf8_lossy(line)))
            });
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-disposition") {
            filename = param(value, b"filename");
        } else if name.eq_ignore_ascii_case(b"content-type") {
            let media = value.split(|&b| b == b';').next().map(trim).unwrap_or_default();
            is_dir = media.eq_ignore_ascii_case(b"application/x-directory")
                || media.eq_ignore_ascii_case(b"multipart/form-data");
        }
    }
    let raw = filename.unwrap_or_default();
    let unescaped = crate::gourl::unescape(&raw, true).unwrap_or(raw);
    Part { path: clean_relative(&unescaped), is_dir, malformed }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

/// A parameter of a `mime.ParseMediaType` value: token or quoted string
/// (backslash escapes). RFC 2231 `filename*` is ignored as Go's
/// `FileName()` then uses it; clients of the RPC API do not send it.
fn param(value: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let mut rest = value;
    while let Some(semi) = rest.iter().position(|&b| b == b';') {
        rest = trim(&rest[semi + 1..]);
        let eq = rest.iter().position(|&b| b == b'=')?;
        let k = trim(&rest[..eq]);
        let mut v = trim(&rest[eq + 1..]);
        let mut out = Vec::new();
        if v.first() == Some(&b'"') {
            v = &v[1..];
            let mut j = 0;
            while j < v.len() && v[j] != b'"' {
                if v[j] == b'\\' && j + 1 < v.len() {
                    j += 1;
                }
                out.push(v[j]);
                j += 1;
            }
            rest = v.get(j + 1..).unwrap_or_default();
        } else {
            let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
            out.extend_from_slice(trim(&v[..end]));
            rest = &v[end..];
        }
        if k.eq_ignore_ascii_case(key) {
            return Some(out);
        }
    }
    None
}

/// `path.Clean("/" + p)` without the leading slash.
fn clean_relative(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in p.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn body() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir\"\r\nContent-Type: application/x-directory\r\n\r\n");
        b.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir%2Fa+b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n");
        b.extend_from_slice(b"hello\r\n--XyZ not a boundary\r\n--Xy");
        b.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\n");
        b.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"./x/../y%zz\"\r\n\r\n");
        b.extend_from_slice(b"data\r\n--XyZ--\r\n");
        b
    }

    fn expected() -> Vec<Part> {
        vec![
            Part { path: b"dir".to_vec(), is_dir: true, malformed: None },
            Part { path: b"dir/a b.txt".to_vec(), is_dir: false, malformed: None },
            Part { path: b"".to_vec(), is_dir: false, malformed: None },
            Part { path: b"y%zz".to_vec(), is_dir: false, malformed: None },
        ]
    }

    #[test]
    fn finds_parts_whole_and_in_every_split() {
        let b = body();
        let mut whole = Vec::new();
        Scanner::new("XyZ").feed(&b, |p| whole.push(p));
        assert_eq!(whole, expected());
        for cut in 0..b.len() {
            let mut s = Scanner::new("XyZ");
            let mut got = Vec::new();
            s.feed(&b[..cut], |p| got.push(p));
            s.feed(&b[cut..], |p| got.push(p));
            assert_eq!(got, expected(), "split at {cut}");
            assert!(!s.lost());
        }
        // Byte by byte.
        let mut s = Scanner::new("XyZ");
        let mut got = Vec::new();
        for c in b.chunks(1) {
            s.feed(c, |p| got.push(p));
        }
        assert_eq!(got, expected());
    }

    #[test]
    fn carry_stays_small_in_bodies() {
        let mut s = Scanner::new("XyZ");
        s.feed(b"--XyZ\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\n", |_| {});
        for _ in 0..1000 {
            s.feed(&[b'a'; 4096], |_| {});
            assert!(s.carry.len() < 16);
        }
    }

    #[test]
    fn oversized_headers_lose_track_instead_of_growing() {
        let mut s = Scanner::new("b");
        s.feed(b"--b\r\nX: ", |_| {});
        s.feed(&vec![b'a'; MAX_HEADER_BLOCK + 10], |_| {});
        assert!(s.lost());
        assert!(s.carry.is_empty());
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn malformed_header_lines_are_reported_as_go_does() {
        let p = parse_headers(b"broken\r\nContent-Type: text/plain");
        assert_eq!(p.malformed.as_deref(), Some("malformed MIME header: missing colon: \"broken\""));
    }

    #[test]
    fn quoted_filenames_with_escapes() {
        let p = parse_headers(b"Content-Disposition: form-data; name=\"file\"; filename=\"a\\\"b\"");
        assert_eq!(p.path, b"a\"b");
    }
}
