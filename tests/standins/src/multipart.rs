//! Reimplementation of the request-body parsing both daemons share:
//! * Go `mime/multipart.Reader` (NextPart, partReader.Read, scanUntilBoundary,
//!   matchAfterPrefix) over a 4096-byte `bufio.Reader` with a sticky error, and
//!   `net/textproto.Reader.ReadMIMEHeader` for part headers (Go 1.26);
//! * Go `mime.ParseMediaType` for Content-Type / Content-Disposition;
//! * boxo `files/multipartfile.go` (v0.42.0 = v0.39.0): `fileName` (QueryUnescape +
//!   path.Clean), the directory iterator with implicit parent directories, `fileInfo`
//!   (mode/mtime from the form name).
//!
//! Errors carry Go's `Error()` text, since both daemons print them verbatim.

use crate::dag::{GoErr, GoRead};
use crate::gofmt;
use crate::gohttp::Header;

const PEEK_BUFFER_SIZE: usize = 4096;

/// bufio.Reader(4096) over a stickyErrorReader.
struct BufReader<R: GoRead> {
    rd: R,
    sticky: Option<GoErr>,
    buf: Vec<u8>,
    r: usize,
    w: usize,
    err: Option<GoErr>,
}

impl<R: GoRead> BufReader<R> {
    fn new(rd: R) -> Self {
        BufReader { rd, sticky: None, buf: vec![0; PEEK_BUFFER_SIZE], r: 0, w: 0, err: None }
    }
    fn src_read(&mut self, from: usize) -> (usize, Option<GoErr>) {
        if let Some(e) = &self.sticky {
            return (0, Some(e.clone()));
        }
        let (n, e) = self.rd.go_read(&mut self.buf[from..]);
        self.sticky = e.clone();
        (n, e)
    }
    fn fill(&mut self) {
        if self.r > 0 {
            self.buf.copy_within(self.r..self.w, 0);
            self.w -= self.r;
            self.r = 0;
        }
        for _ in 0..100 {
            let (n, e) = self.src_read(self.w);
            self.w += n;
            if let Some(e) = e {
                self.err = Some(e);
                return;
            }
            if n > 0 {
                return;
            }
        }
        self.err = Some(GoErr::Msg("multiple Read calls return no data or error".into()));
    }
    fn read_err(&mut self) -> Option<GoErr> {
        self.err.take()
    }
    fn buffered(&self) -> usize {
        self.w - self.r
    }
    /// Peek(n): returns the available prefix and an error if fewer than n bytes.
    fn peek(&mut self, n: usize) -> (usize, Option<GoErr>) {
        while self.w - self.r < n && self.w - self.r < self.buf.len() && self.err.is_none() {
            self.fill();
        }
        if n > self.buf.len() {
            return (self.w - self.r, Some(GoErr::Msg("bufio: buffer full".into())));
        }
        let avail = self.w - self.r;
        if avail < n {
            let e = self.read_err().unwrap_or(GoErr::Msg("bufio: buffer full".into()));
            return (avail, Some(e));
        }
        (n, None)
    }
    fn read(&mut self, p: &mut [u8]) -> (usize, Option<GoErr>) {
        if p.is_empty() {
            return (0, if self.buffered() > 0 { None } else { self.read_err() });
        }
        if self.r == self.w {
            if self.err.is_some() {
                return (0, self.read_err());
            }
            self.r = 0;
            self.w = 0;
            let (n, e) = self.src_read(0);
            self.err = e;
            if n == 0 {
                return (0, self.read_err());
            }
            self.w += n;
        }
        let n = p.len().min(self.w - self.r);
        p[..n].copy_from_slice(&self.buf[self.r..self.r + n]);
        self.r += n;
        (n, None)
    }
    /// ReadSlice('\n').
    fn read_slice(&mut self) -> (Vec<u8>, Option<GoErr>) {
        let mut s = 0;
        loop {
            if let Some(i) = self.buf[self.r + s..self.w].iter().position(|&c| c == b'\n') {
                let i = i + s;
                let line = self.buf[self.r..self.r + i + 1].to_vec();
                self.r += i + 1;
                return (line, None);
            }
            if self.err.is_some() {
                let line = self.buf[self.r..self.w].to_vec();
                self.r = self.w;
                return (line, self.read_err());
            }
            if self.buffered() >= self.buf.len() {
                self.r = self.w;
                return (self.buf.clone(), Some(GoErr::Msg("bufio: buffer full".into())));
            }
            s = self.w - self.r;
            self.fill();
        }
    }
    /// ReadLine (line without \r\n, isPrefix, err).
    fn read_line(&mut self) -> (Vec<u8>, bool, Option<GoErr>) {
        let (mut line, err) = self.read_slice();
        if err == Some(GoErr::Msg("bufio: buffer full".into())) {
            if line.last() == Some(&b'\r') {
                self.r -= 1;
                line.pop();
            }
            return (line, true, None);
        }
        if line.is_empty() {
            return (line, false, err);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        (line, false, None)
    }
    fn read_byte(&mut self) -> Option<u8> {
        while self.r == self.w {
            if self.err.is_some() {
                return None;
            }
            self.fill();
        }
        let c = self.buf[self.r];
        self.r += 1;
        Some(c)
    }
}

/// textproto readLineSlice(-1).
fn read_line_slice<R: GoRead>(br: &mut BufReader<R>) -> Result<Vec<u8>, GoErr> {
    let mut line: Option<Vec<u8>> = None;
    loop {
        let (l, more, err) = br.read_line();
        if let Some(e) = err {
            return Err(e);
        }
        if line.is_none() && !more {
            return Ok(l);
        }
        line.get_or_insert_with(Vec::new).extend_from_slice(&l);
        if !more {
            break;
        }
    }
    Ok(line.unwrap_or_default())
}

fn trim(s: &[u8]) -> &[u8] {
    let sp = |c: &u8| *c == b' ' || *c == b'\t' || *c == b'\n' || *c == b'\r';
    let start = s.iter().position(|c| !sp(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !sp(c)).map(|i| i + 1).unwrap_or(start);
    &s[start..end.max(start)]
}

/// textproto readContinuedLineSlice(mustHaveFieldNameColon).
fn read_continued_line<R: GoRead>(br: &mut BufReader<R>) -> Result<Vec<u8>, GoErr> {
    let line = read_line_slice(br)?;
    if line.is_empty() {
        return Ok(line);
    }
    if !line.contains(&b':') {
        return Err(GoErr::Msg(format!("malformed MIME header: missing colon: {}", gofmt::go_quote(&line))));
    }
    let mut buf = trim(&line).to_vec();
    // Continuation lines start with space/tab.
    loop {
        let mut n = 0;
        loop {
            match br.read_byte() {
                Some(c) if c == b' ' || c == b'\t' => n += 1,
                Some(_) => {
                    br.r -= 1;
                    break;
                }
                None => break,
            }
        }
        if n == 0 {
            break;
        }
        buf.push(b' ');
        match read_line_slice(br) {
            Ok(l) => buf.extend_from_slice(trim(&l)),
            Err(_) => break,
        }
    }
    Ok(buf)
}

fn valid_header_value_byte(c: u8) -> bool {
    c == b'\t' || (0x20..0x7f).contains(&c) || c >= 0x80
}

/// textproto ReadMIMEHeader. Returns the headers read and the error that stopped it.
fn read_mime_header<R: GoRead>(br: &mut BufReader<R>) -> (Header, Option<GoErr>) {
    let mut m = Header::default();
    let (n, _) = br.peek(1);
    if n == 1 && (br.buf[br.r] == b' ' || br.buf[br.r] == b'\t') {
        return match read_line_slice(br) {
            Err(e) => (m, Some(e)),
            Ok(line) => {
                let line = &line[..line.len().min(80)];
                (m, Some(GoErr::Msg(format!("malformed MIME header initial line: {}", String::from_utf8_lossy(line)))))
            }
        };
    }
    loop {
        let kv = match read_continued_line(br) {
            Ok(kv) => kv,
            Err(e) => return (m, Some(e)),
        };
        if kv.is_empty() {
            return (m, None);
        }
        let i = kv.iter().position(|&c| c == b':').unwrap_or(kv.len());
        if i == kv.len() {
            return (m, Some(GoErr::Msg(format!("malformed MIME header line: {}", String::from_utf8_lossy(&kv)))));
        }
        let (key, ok) = gofmt::canonical_key_checked(&kv[..i]);
        if !ok || !kv[i + 1..].iter().all(|&c| valid_header_value_byte(c)) {
            return (m, Some(GoErr::Msg(format!("malformed MIME header line: {}", String::from_utf8_lossy(&kv)))));
        }
        let v = &kv[i + 1..];
        let start = v.iter().position(|c| *c != b' ' && *c != b'\t').unwrap_or(v.len());
        // Header values are Go strings (bytes); keep them lossless as Latin-1-ish via
        // lossy UTF-8 (only Content-Type/Disposition are interpreted).
        m.0.entry(key).or_default().push(String::from_utf8_lossy(&v[start..]).into_owned());
    }
}

/// State of the part being read (`multipart.Part`).
struct PartState {
    n: usize,
    total: u64,
    err: Option<GoErr>,
    read_err: Option<GoErr>,
}

/// Go `multipart.Reader`.
pub struct MultipartReader<R: GoRead> {
    br: BufReader<R>,
    nl: Vec<u8>,
    nl_dash_boundary: Vec<u8>,
    dash_boundary_dash: Vec<u8>,
    dash_boundary: Vec<u8>,
    parts_read: usize,
    current: Option<PartState>,
}

fn skip_lwsp(mut b: &[u8]) -> &[u8] {
    while let Some((&c, rest)) = b.split_first() {
        if c == b' ' || c == b'\t' {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn match_after_prefix(buf: &[u8], prefix_len: usize, read_err: bool) -> i32 {
    if buf.len() == prefix_len {
        return if read_err { 1 } else { 0 };
    }
    let c = buf[prefix_len];
    if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
        return 1;
    }
    if c == b'-' {
        if buf.len() == prefix_len + 1 {
            return if read_err { -1 } else { 0 };
        }
        if buf[prefix_len + 1] == b'-' {
            return 1;
        }
    }
    -1
}

impl<R: GoRead> MultipartReader<R> {
    pub fn new(rd: R, boundary: &str) -> Self {
        let b = boundary.as_bytes();
        MultipartReader {
            br: BufReader::new(rd),
            nl: b"\r\n".to_vec(),
            nl_dash_boundary: [b"\r\n--", b].concat(),
            dash_boundary_dash: [b"--", b, b"--"].concat(),
            dash_boundary: [b"--", b].concat(),
            parts_read: 0,
            current: None,
        }
    }

    fn is_final_boundary(&self, line: &[u8]) -> bool {
        if !line.starts_with(&self.dash_boundary_dash) {
            return false;
        }
        let rest = skip_lwsp(&line[self.dash_boundary_dash.len()..]);
        rest.is_empty() || rest == self.nl.as_slice()
    }

    fn is_boundary_delimiter_line(&mut self, line: &[u8]) -> bool {
        if !line.starts_with(&self.dash_boundary) {
            return false;
        }
        let rest = skip_lwsp(&line[self.dash_boundary.len()..]);
        if self.parts_read == 0 && rest == b"\n" {
            self.nl = b"\n".to_vec();
            self.nl_dash_boundary = self.nl_dash_boundary[1..].to_vec();
        }
        rest == self.nl.as_slice()
    }

    /// NextPart: Ok(Some(headers)) / Ok(None) for io.EOF / Err(error).
    pub fn next_part(&mut self) -> Result<Option<Header>, GoErr> {
        if self.current.is_some() {
            // Part.Close: io.Copy(io.Discard, part), error ignored.
            let mut scratch = vec![0u8; 8192];
            loop {
                let (n, e) = self.part_read(&mut scratch);
                if e.is_some() || n == 0 && e.is_some() {
                    break;
                }
            }
            self.current = None;
        }
        if self.dash_boundary == b"--" {
            return Err(GoErr::Msg("multipart: boundary is empty".into()));
        }
        let mut expect_new_part = false;
        loop {
            let (line, err) = self.br.read_slice();
            if err == Some(GoErr::Eof) && self.is_final_boundary(&line) {
                return Ok(None);
            }
            if let Some(e) = err {
                return Err(GoErr::Msg(format!("multipart: NextPart: {}", e)));
            }
            if self.is_boundary_delimiter_line(&line) {
                self.parts_read += 1;
                let (h, e) = read_mime_header(&mut self.br);
                if let Some(e) = e {
                    // populateHeaders returns the error as is (io.EOF included: the
                    // caller then sees a clean end).
                    if e == GoErr::Eof {
                        return Ok(None);
                    }
                    return Err(e);
                }
                self.current = Some(PartState { n: 0, total: 0, err: None, read_err: None });
                return Ok(Some(h));
            }
            if self.is_final_boundary(&line) {
                return Ok(None);
            }
            if expect_new_part {
                return Err(GoErr::Msg(format!(
                    "multipart: expecting a new Part; got line {}",
                    gofmt::go_quote(&line)
                )));
            }
            if self.parts_read == 0 {
                continue;
            }
            if line == self.nl {
                expect_new_part = true;
                continue;
            }
            return Err(GoErr::Msg(format!("multipart: unexpected line in Next(): {}", gofmt::go_quote(&line))));
        }
    }

    fn scan_until_boundary(&self, buf: &[u8], total: u64, read_err: &Option<GoErr>) -> (usize, Option<GoErr>) {
        let re = read_err.is_some();
        if total == 0 {
            if buf.starts_with(&self.dash_boundary) {
                match match_after_prefix(buf, self.dash_boundary.len(), re) {
                    -1 => return (self.dash_boundary.len(), None),
                    0 => return (0, None),
                    _ => return (0, Some(GoErr::Eof)),
                }
            }
            if self.dash_boundary.starts_with(buf) {
                return (0, read_err.clone());
            }
        }
        if let Some(i) = find(buf, &self.nl_dash_boundary) {
            match match_after_prefix(&buf[i..], self.nl_dash_boundary.len(), re) {
                -1 => return (i + self.nl_dash_boundary.len(), None),
                0 => return (i, None),
                _ => return (i, Some(GoErr::Eof)),
            }
        }
        if self.nl_dash_boundary.starts_with(buf) {
            return (0, read_err.clone());
        }
        if let Some(i) = buf.iter().rposition(|&c| c == self.nl_dash_boundary[0]) {
            if self.nl_dash_boundary.starts_with(&buf[i..]) {
                return (i, None);
            }
        }
        (buf.len(), read_err.clone())
    }

    /// partReader.Read on the current part.
    pub fn part_read(&mut self, d: &mut [u8]) -> (usize, Option<GoErr>) {
        let Some(mut p) = self.current.take() else { return (0, Some(GoErr::Eof)) };
        while p.n == 0 && p.err.is_none() {
            let b = self.br.buffered();
            let peek = self.br.buf[self.br.r..self.br.r + b].to_vec();
            let (n, e) = self.scan_until_boundary(&peek, p.total, &p.read_err);
            p.n = n;
            p.err = e;
            if p.n == 0 && p.err.is_none() {
                let (_, e) = self.br.peek(peek.len() + 1);
                p.read_err = match e {
                    Some(GoErr::Eof) => Some(GoErr::UnexpectedEof),
                    Some(GoErr::Msg(m)) if m == "bufio: buffer full" => None,
                    other => other,
                };
            }
        }
        if p.n == 0 {
            let e = p.err.clone();
            self.current = Some(p);
            return (0, e);
        }
        let n = d.len().min(p.n);
        let (n, _) = self.br.read(&mut d[..n]);
        p.total += n as u64;
        p.n -= n;
        let ret = if p.n == 0 { (n, p.err.clone()) } else { (n, None) };
        self.current = Some(p);
        ret
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    h.windows(n.len()).position(|w| w == n)
}

// ---------------------------------------------------------------- mime.ParseMediaType

fn is_tspecial(c: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&c)
}
fn is_token_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !is_tspecial(c)
}
fn consume_token(v: &[u8]) -> (&[u8], &[u8]) {
    let n = v.iter().position(|&c| !is_token_char(c)).unwrap_or(v.len());
    (&v[..n], &v[n..])
}
fn trim_left_space(v: &[u8]) -> &[u8] {
    // unicode.IsSpace on ASCII bytes (multi-byte spaces are rare in these headers).
    let n = v.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)).unwrap_or(v.len());
    &v[n..]
}
fn consume_value(v: &[u8]) -> (Vec<u8>, &[u8]) {
    if v.is_empty() {
        return (Vec::new(), v);
    }
    if v[0] != b'"' {
        let (t, r) = consume_token(v);
        return (t.to_vec(), r);
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < v.len() {
        let r = v[i];
        if r == b'"' {
            return (out, &v[i + 1..]);
        }
        if r == b'\\' && i + 1 < v.len() && is_tspecial(v[i + 1]) {
            out.push(v[i + 1]);
            i += 2;
            continue;
        }
        if r == b'\r' || r == b'\n' {
            return (Vec::new(), v);
        }
        out.push(r);
        i += 1;
    }
    (Vec::new(), v)
}
/// Returns (key, value, rest) or key empty on failure.
fn consume_media_param(v: &[u8]) -> (String, Vec<u8>, &[u8]) {
    let rest = trim_left_space(v);
    let Some(rest) = rest.strip_prefix(b";") else { return (String::new(), Vec::new(), v) };
    let rest = trim_left_space(rest);
    let (param, rest) = consume_token(rest);
    let param = String::from_utf8_lossy(param).to_ascii_lowercase();
    if param.is_empty() {
        return (String::new(), Vec::new(), v);
    }
    let rest = trim_left_space(rest);
    let Some(rest) = rest.strip_prefix(b"=") else { return (String::new(), Vec::new(), v) };
    let rest = trim_left_space(rest);
    let (value, rest2) = consume_value(rest);
    if value.is_empty() && rest2.len() == rest.len() {
        return (String::new(), Vec::new(), v);
    }
    (param, value, rest2)
}

/// Media type parameters in order: (lower-cased name, value bytes).
pub type Params = Vec<(String, Vec<u8>)>;

/// Go `mime.ParseMediaType`: (lower-cased media type, params) or an error text.
/// RFC 2231 `key*` (charset''pct-encoded) and `key*0…` continuations are supported.
pub fn parse_media_type(v: &str) -> Result<(String, Params), String> {
    let vb = v.as_bytes();
    let base_len = vb.iter().position(|&c| c == b';').unwrap_or(vb.len());
    let mediatype = String::from_utf8_lossy(&vb[..base_len]).to_lowercase().trim().to_string();
    {
        let s = mediatype.as_bytes();
        let (typ, rest) = consume_token(s);
        if typ.is_empty() {
            return Err("mime: no media type".into());
        }
        if !rest.is_empty() {
            let Some(rest) = rest.strip_prefix(b"/") else { return Err("mime: expected slash after first token".into()) };
            let (sub, rest) = consume_token(rest);
            if sub.is_empty() {
                return Err("mime: expected token after slash".into());
            }
            if !rest.is_empty() {
                return Err("mime: unexpected content after media subtype".into());
            }
        }
    }
    let mut params: Vec<(String, Vec<u8>)> = Vec::new();
    let mut cont: Vec<(String, Params)> = Vec::new();
    let mut rest = &vb[base_len..];
    while !rest.is_empty() {
        rest = trim_left_space(rest);
        if rest.is_empty() {
            break;
        }
        let (key, value, r) = consume_media_param(rest);
        if key.is_empty() {
            if trim(r) == b";" {
                break;
            }
            return Err("mime: invalid media parameter".into());
        }
        let pmap: &mut Vec<(String, Vec<u8>)> = if let Some((base, _)) = key.split_once('*') {
            let idx = match cont.iter().position(|(b, _)| b == base) {
                Some(i) => i,
                None => {
                    cont.push((base.to_string(), Vec::new()));
                    cont.len() - 1
                }
            };
            &mut cont[idx].1
        } else {
            &mut params
        };
        if let Some((_, old)) = pmap.iter().find(|(k, _)| *k == key) {
            if *old != value {
                return Err("mime: duplicate parameter name".into());
            }
        }
        pmap.retain(|(k, _)| *k != key);
        pmap.push((key, value));
        rest = r;
    }
    for (base, pieces) in cont {
        if params.iter().any(|(k, _)| *k == base) {
            continue;
        }
        let get = |k: &str| pieces.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
        if let Some(v) = get(&format!("{}*", base)) {
            if let Some(d) = decode_2231(&v) {
                params.push((base.clone(), d));
            }
            continue;
        }
        let mut out = Vec::new();
        let mut valid = false;
        for n in 0.. {
            let simple = format!("{}*{}", base, n);
            let enc = format!("{}*{}*", base, n);
            if let Some(v) = get(&simple) {
                valid = true;
                out.extend_from_slice(&v);
            } else if let Some(v) = get(&enc) {
                valid = true;
                let d = if n == 0 { decode_2231(&v) } else { pct_decode(&v) };
                match d {
                    Some(d) => out.extend_from_slice(&d),
                    None => {
                        valid = false;
                        break;
                    }
                }
            } else {
                break;
            }
        }
        if valid {
            params.push((base, out));
        }
    }
    Ok((mediatype, params))
}

fn pct_decode(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            let h = (*v.get(i + 1)? as char).to_digit(16)?;
            let l = (*v.get(i + 2)? as char).to_digit(16)?;
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Some(out)
}

fn decode_2231(v: &[u8]) -> Option<Vec<u8>> {
    let mut sp = v.splitn(3, |&c| c == b'\'');
    let (charset, _lang, enc) = (sp.next()?, sp.next()?, sp.next()?);
    let cs = String::from_utf8_lossy(charset).to_ascii_lowercase();
    if cs != "us-ascii" && cs != "utf-8" {
        return None;
    }
    pct_decode(enc)
}

pub fn param<'a>(params: &'a [(String, Vec<u8>)], k: &str) -> Option<&'a [u8]> {
    params.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_slice())
}

// ---------------------------------------------------------------- boxo multipartfile.go

/// `path.Clean`.
pub fn path_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in p.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(b"..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join(&b'/');
    match (rooted, joined.is_empty()) {
        (true, _) => [b"/".as_slice(), &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

/// `path.Join` (cleaned; empty elements dropped; "" if all empty).
pub fn path_join(a: &[u8], b: &[u8]) -> Vec<u8> {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Vec::new(),
        (true, false) => path_clean(b),
        (false, true) => path_clean(a),
        (false, false) => path_clean(&[a, b"/", b].concat()),
    }
}

/// boxo `fileName`: Content-Disposition filename, QueryUnescape'd (kept raw if that
/// fails), then `path.Clean("/" + filename)`.
pub fn file_name(h: &Header) -> Vec<u8> {
    let v = h.get("Content-Disposition");
    let Ok((_, params)) = parse_media_type(v) else { return b"/".to_vec() };
    let filename = param(&params, "filename").unwrap_or(b"").to_vec();
    let filename = gofmt::query_unescape(&filename).unwrap_or(filename);
    path_clean(&[b"/".as_slice(), &filename].concat())
}

/// `Part.FormName`.
fn form_name(h: &Header) -> Vec<u8> {
    match parse_media_type(h.get("Content-Disposition")) {
        Ok((d, params)) if d == "form-data" => param(&params, "name").unwrap_or(b"").to_vec(),
        _ => Vec::new(),
    }
}

/// boxo `fileInfo`: mode / mtime from `name?mode=…&mtime=…&mtime-nsecs=…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    /// (secs, nsecs) when `mtime` was given.
    pub mtime: Option<(i64, i64)>,
}

fn file_meta(h: &Header) -> Meta {
    let fname = form_name(h);
    let Some(q) = fname.iter().position(|&c| c == b'?') else { return Meta::default() };
    let q = String::from_utf8_lossy(&fname[q + 1..]).into_owned();
    let params = gofmt::parse_query(&q);
    let mut m = Meta::default();
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "mode") {
        if let Ok(mode) = u32::from_str_radix(&v[0], 8) {
            m.mode = mode;
        }
    }
    let mut secs = 0;
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "mtime") {
        match v[0].parse::<i64>() {
            Ok(s) => secs = s,
            Err(_) => return m,
        }
    }
    let mut nsecs = 0;
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "mtime-nsecs") {
        nsecs = v[0].parse::<i64>().unwrap_or(0);
    }
    // fileInfo sets mtime = time.Unix(secs, nsecs) whenever the form name has a query.
    m.mtime = Some((secs, nsecs));
    m
}

/// What the walker hands out.
pub enum Entry {
    File { meta: Meta },
    Symlink { target: Vec<u8>, meta: Meta },
    /// `path` is the cleaned absolute multipart path of the directory.
    Dir { path: Vec<u8>, meta: Meta },
}

/// boxo `multipartWalker` + the iterator state of one directory level.
pub struct Walker<R: GoRead> {
    pub mr: MultipartReader<R>,
    part: Option<Header>,
    reader_done: bool,
}

pub struct DirIter {
    path: Vec<u8>,
    cur_name: Vec<u8>,
    err: Option<GoErr>,
    finished: bool,
}

impl DirIter {
    pub fn root() -> Self {
        DirIter { path: b"/".to_vec(), cur_name: Vec::new(), err: None, finished: false }
    }
    pub fn for_dir(path: Vec<u8>) -> Self {
        DirIter { path, cur_name: Vec::new(), err: None, finished: false }
    }
    /// `Err()`: io.EOF is not an error.
    pub fn err(&self) -> Option<GoErr> {
        match &self.err {
            Some(GoErr::Eof) | None => None,
            Some(e) => Some(e.clone()),
        }
    }
}

fn dir_name(p: &[u8]) -> Vec<u8> {
    if p.ends_with(b"/") {
        p.to_vec()
    } else {
        [p, b"/"].concat()
    }
}
fn is_child(child: &[u8], parent: &[u8]) -> bool {
    child.starts_with(&dir_name(parent))
}

impl<R: GoRead> Walker<R> {
    pub fn new(mr: MultipartReader<R>) -> Self {
        Walker { mr, part: None, reader_done: false }
    }

    fn get_part(&mut self) -> Result<Header, GoErr> {
        if let Some(p) = &self.part {
            return Ok(p.clone());
        }
        if self.reader_done {
            return Err(GoErr::Eof);
        }
        match self.mr.next_part() {
            Ok(Some(h)) => {
                self.part = Some(h.clone());
                Ok(h)
            }
            Ok(None) => {
                self.reader_done = true;
                Err(GoErr::Eof)
            }
            Err(e) => Err(e),
        }
    }

    fn next_file(&mut self) -> Result<Entry, GoErr> {
        let h = self.get_part()?;
        self.part = None;
        let mut ct = h.get("Content-Type").to_string();
        if !ct.is_empty() {
            ct = parse_media_type(&ct).map_err(GoErr::Msg)?.0;
        }
        let name = file_name(&h);
        let meta = file_meta(&h);
        match ct.as_str() {
            "multipart/form-data" | "application/x-directory" => Ok(Entry::Dir { path: name, meta }),
            "application/symlink" => {
                let mut target = Vec::new();
                let mut buf = vec![0u8; 4096];
                loop {
                    let (n, e) = self.mr.part_read(&mut buf);
                    target.extend_from_slice(&buf[..n]);
                    match e {
                        None => {}
                        Some(GoErr::Eof) => break,
                        Some(e) => return Err(e),
                    }
                }
                Ok(Entry::Symlink { target, meta })
            }
            _ => {
                if let Some(enc) = h.0.get("Abspath-Encoded").and_then(|v| v.first()) {
                    if gofmt::query_unescape(enc.as_bytes()).is_none() {
                        return Err(GoErr::Msg(format!("invalid URL escape {}", gofmt::go_quote(bad_escape(enc.as_bytes()).as_bytes()))));
                    }
                }
                Ok(Entry::File { meta })
            }
        }
    }

    /// `multipartIterator.Next`: Some((name, entry)) or None (then see `it.err()`).
    pub fn next(&mut self, it: &mut DirIter) -> Option<(Vec<u8>, Entry)> {
        if self.reader_done || it.err.is_some() || it.finished {
            return None;
        }
        loop {
            let h = match self.get_part() {
                Ok(h) => h,
                Err(e) => {
                    it.err = Some(e);
                    return None;
                }
            };
            let name = file_name(&h);
            if !is_child(&name, &it.path) {
                it.finished = true;
                return None;
            }
            if !it.cur_name.is_empty() && is_child(&name, &path_join(&it.path, &it.cur_name)) {
                self.part = None;
                continue;
            }
            let rel = name[dir_name(&it.path).len().min(name.len())..].to_vec();
            if let Some(i) = rel.iter().position(|&c| c == b'/') {
                it.cur_name = rel[..i].to_vec();
                let p = path_join(&it.path, &it.cur_name);
                return Some((it.cur_name.clone(), Entry::Dir { path: p, meta: Meta::default() }));
            }
            it.cur_name = rel.clone();
            match self.next_file() {
                Ok(e) => return Some((rel, e)),
                Err(e) => {
                    it.err = Some(e);
                    return None;
                }
            }
        }
    }
}

/// The first bad `%` escape (url.EscapeError text).
fn bad_escape(s: &[u8]) -> String {
    for i in 0..s.len() {
        if s[i] == b'%' {
            let ok = s.get(i + 1).is_some_and(|c| c.is_ascii_hexdigit()) && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
            if !ok {
                return String::from_utf8_lossy(&s[i..(i + 3).min(s.len())]).into_owned();
            }
        }
    }
    String::new()
}

/// Reader over the current part of a walker (the `files.File` of an entry).
pub struct PartFile<'a, R: GoRead> {
    pub w: &'a mut Walker<R>,
}

impl<R: GoRead> GoRead for PartFile<'_, R> {
    fn go_read(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
        self.w.mr.part_read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<u8>, usize, usize);
    impl GoRead for Mem {
        fn go_read(&mut self, buf: &mut [u8]) -> (usize, Option<GoErr>) {
            let n = buf.len().min(self.0.len() - self.1).min(self.2);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            if self.1 == self.0.len() {
                (n, Some(GoErr::Eof))
            } else {
                (n, None)
            }
        }
    }

    /// (path, content) of each file walked.
    type Files = Vec<(Vec<u8>, Vec<u8>)>;

    fn walk(body: &[u8], step: usize) -> (Files, Option<GoErr>) {
        let mut w = Walker::new(MultipartReader::new(Mem(body.to_vec(), 0, step), "B"));
        let mut it = DirIter::root();
        let mut out = Vec::new();
        fn rec<R: GoRead>(w: &mut Walker<R>, it: &mut DirIter, prefix: &[u8], out: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Option<GoErr> {
            while let Some((name, e)) = w.next(it) {
                let p = path_join(prefix, &name);
                match e {
                    Entry::Dir { path, .. } => {
                        let mut sub = DirIter::for_dir(path);
                        if let Some(e) = rec(w, &mut sub, &p, out) {
                            return Some(e);
                        }
                        out.push((p, b"<dir>".to_vec()));
                    }
                    Entry::File { .. } | Entry::Symlink { .. } => {
                        let mut data = Vec::new();
                        let mut buf = [0u8; 3];
                        loop {
                            let (n, e) = w.mr.part_read(&mut buf);
                            data.extend_from_slice(&buf[..n]);
                            if e.is_some() {
                                break;
                            }
                        }
                        out.push((p, data));
                    }
                }
            }
            it.err()
        }
        let e = rec(&mut w, &mut it, b"", &mut out);
        (out, e)
    }

    const DIR_BODY: &[u8] = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d%2Fa%20b\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d/sub/c\"\r\n\r\nxyz\r\n--B--\r\n";

    #[test]
    fn walks_nested_dirs_with_escaped_names() {
        for step in [1, 7, 4096] {
            let (out, err) = walk(DIR_BODY, step);
            assert_eq!(err, None);
            let names: Vec<String> = out.iter().map(|(n, d)| format!("{}={}", String::from_utf8_lossy(n), String::from_utf8_lossy(d))).collect();
            assert_eq!(names, vec!["d/a b=hello", "d/sub/c=xyz", "d/sub=<dir>", "d=<dir>"], "step {}", step);
        }
    }

    #[test]
    fn broken_header_errors_like_go() {
        let (_, err) = walk(b"--B\r\nbroken\r\n\r\nx\r\n--B--\r\n", 4096);
        assert_eq!(err, Some(GoErr::Msg("malformed MIME header: missing colon: \"broken\"".into())));
        let (out, err) = walk(b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nhello", 4096);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, b"hello");
        assert_eq!(err, Some(GoErr::Msg("multipart: NextPart: EOF".into())));
    }

    #[test]
    fn media_types() {
        let (t, p) = parse_media_type("form-data; name=\"file\"; filename=\"a\\\"b\"").unwrap();
        assert_eq!(t, "form-data");
        assert_eq!(param(&p, "filename"), Some(b"a\"b".as_slice()));
        let (_, p) = parse_media_type("form-data; filename*=UTF-8''%C3%A9").unwrap();
        assert_eq!(param(&p, "filename"), Some("é".as_bytes()));
        assert!(parse_media_type("").is_err());
        assert_eq!(path_clean(b"/a/../b/"), b"/b");
        assert_eq!(path_join(b"", b""), b"");
    }
}
