//! Request-target parsing. The router decides on the decoded, segment-split
//! path, so anything whose meaning differs between decoders (Envoy, Go's
//! net/http, gorilla/mux) is refused here instead of being guessed at.

/// A request target as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Percent-decoded path segments; empty segments (`//`, trailing `/`) are
    /// dropped because every backend either merges or redirects them.
    pub segments: Vec<String>,
    /// The raw path ended in `/` (kept for the record; no decision uses it).
    pub trailing_slash: bool,
    /// Decoded query pairs in order, repeated keys kept (`arg=a&arg=b`).
    pub query: Vec<(String, String)>,
}

impl Target {
    /// `/a/b` form of the decoded segments (`/` for none).
    pub fn canonical_path(&self) -> String {
        if self.segments.is_empty() {
            return "/".to_string();
        }
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            out.push_str(s);
        }
        out
    }

    /// All values of query key `key` (exact, case-sensitive: Go's url.Values
    /// and Kubo's option lookup are case-sensitive too).
    pub fn query_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `:path` (origin-form, or absolute-form `http://host/path`).
/// The error is the message given to the client with status 400.
pub fn parse_target(raw: &[u8]) -> Result<Target, String> {
    let rest = strip_absolute_form(raw)?;
    let rest: &[u8] = &rest;
    if rest.first() != Some(&b'/') {
        return Err("request target must start with /".into());
    }
    if rest.contains(&b'#') {
        return Err("fragment in request target".into());
    }
    let (path_raw, query_raw) = match rest.iter().position(|&b| b == b'?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    for &b in path_raw {
        // Space, controls, DEL and non-ASCII are never valid raw; backslash is
        // a separator to some decoders (Envoy's normalize_path, Windows).
        if !(0x21..0x7f).contains(&b) || b == b'\\' {
            return Err("invalid character in path".into());
        }
    }
    let mut segments = Vec::new();
    for raw_seg in path_raw.split(|&b| b == b'/') {
        if raw_seg.is_empty() {
            continue;
        }
        let seg = decode_path_segment(raw_seg)?;
        if seg == "." || seg == ".." {
            return Err("dot segment in path".into());
        }
        segments.push(seg);
    }
    let trailing_slash = path_raw.len() > 1 && path_raw.ends_with(b"/");
    let query = match query_raw {
        Some(q) => parse_query(q)?,
        None => Vec::new(),
    };
    Ok(Target {
        segments,
        trailing_slash,
        query,
    })
}

/// `http://host/x` -> `/x`; `http://host` and `http://host?q` -> `/`, `/?q`.
fn strip_absolute_form(raw: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    let lower_prefix = |p: &[u8]| raw.len() >= p.len() && raw[..p.len()].eq_ignore_ascii_case(p);
    let after = if lower_prefix(b"http://") {
        &raw[7..]
    } else if lower_prefix(b"https://") {
        &raw[8..]
    } else {
        return Ok(std::borrow::Cow::Borrowed(raw));
    };
    match after.iter().position(|&b| b == b'/' || b == b'?' || b == b'#') {
        Some(i) if after[i] == b'/' => Ok(std::borrow::Cow::Borrowed(&after[i..])),
        Some(i) => {
            let mut v = b"/".to_vec();
            v.extend_from_slice(&after[i..]);
            Ok(std::borrow::Cow::Owned(v))
        }
        None => Ok(std::borrow::Cow::Borrowed(b"/")),
    }
}

/// Strict percent-decoding: a bad escape is an error rather than literal
/// text, because Go rejects it while other decoders pass it through.
fn percent_decode(raw: &[u8], plus_is_space: bool) -> Result<Vec<u8>, String> {
    crate::gourl::unescape(raw, plus_is_space).ok_or_else(|| "invalid percent-encoding".into())
}

fn decode_path_segment(raw: &[u8]) -> Result<String, String> {
    let bytes = percent_decode(raw, false)?;
    for &b in &bytes {
        // An encoded separator would be one segment here and two in Go's
        // decoded r.URL.Path: refuse rather than pick one meaning.
        if b == b'/' || b == b'\\' {
            return Err("encoded slash in path".into());
        }
        if b < 0x20 || b == 0x7f {
            return Err("encoded control character in path".into());
        }
    }
    String::from_utf8(bytes).map_err(|_| "path is not UTF-8".to_string())
}

fn parse_query(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for &b in raw {
        if !(0x21..0x7f).contains(&b) {
            return Err("invalid character in query".into());
        }
        // Go drops a pair holding `;`, older servers split on it: one
        // request, two readings. Refuse it.
        if b == b';' {
            return Err("';' in query".into());
        }
    }
    for pair in raw.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let k = String::from_utf8(percent_decode(k, true)?)
            .map_err(|_| "query is not UTF-8".to_string())?;
        let v = String::from_utf8(percent_decode(v, true)?)
            .map_err(|_| "query is not UTF-8".to_string())?;
        out.push((k, v));
    }
    Ok(out)
}
