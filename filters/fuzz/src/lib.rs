//! What the fuzz targets share: their input formats (each decoded here and
//! encoded here for the seeds, so the two cannot drift apart), the chunkings
//! and re-encodings the properties are checked under, and the seed corpus.
//!
//! Every target binary writes its seeds when started with
//! `EDGE_FUZZ_WRITE_SEEDS=DIR` (and exits): `./x` builds the seed corpus that
//! way at run time, into the tool cache, from the project's own tests and
//! data (the hostile-request corpus, the configuration examples), so no
//! generated file is committed.

pub mod seeds;

/// Called from each target's `init`: writes the target's seeds into
/// `$EDGE_FUZZ_WRITE_SEEDS` and exits when that is set.
pub fn init(target: &str) {
    let Some(dir) = std::env::var_os("EDGE_FUZZ_WRITE_SEEDS") else { return };
    let dir = std::path::PathBuf::from(dir);
    let seeds = seeds::for_target(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for (i, s) in seeds.iter().enumerate() {
        let p = dir.join(format!("seed-{i:04}"));
        std::fs::write(&p, s).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    eprintln!("{target}: {} seeds in {}", seeds.len(), dir.display());
    std::process::exit(0);
}

/// Deterministic choices (chunk cuts, which bytes to re-encode) derived from
/// the input itself, so a failing input reproduces exactly.
pub struct Rng(u64);

impl Rng {
    pub fn from_input(data: &[u8]) -> Rng {
        // FNV-1a, then never zero (xorshift would stay at zero).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Ways to cut `data` into the chunks Envoy might hand a filter: whole, one
/// byte at a time (short inputs), and random cuts (several, some empty
/// chunks included, as Envoy does send empty ones).
pub fn chunkings<'a>(data: &'a [u8], rng: &mut Rng) -> Vec<Vec<&'a [u8]>> {
    let mut all = vec![vec![data]];
    if data.len() <= 512 {
        all.push(data.chunks(1).collect());
    }
    for _ in 0..3 {
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let n = if rng.one_in(8) { 0 } else { 1 + rng.below((data.len() - at).min(64)) };
            chunks.push(&data[at..at + n]);
            at += n;
        }
        all.push(chunks);
    }
    all
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Re-encodes `raw` (a path or a query) into another spelling that every
/// URL decoder reads as the same bytes: some unreserved characters
/// percent-encoded (upper- or lower-case hex), and the hex digits of existing
/// escapes in the other case. An existing escape, well-formed or not, is
/// kept as one unit so its meaning does not change.
pub fn reencode(raw: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() * 2);
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let end = (i + 3).min(raw.len());
            let escape = &raw[i + 1..end];
            out.push(b'%');
            if escape.len() == 2 && escape.iter().all(u8::is_ascii_hexdigit) {
                for &h in escape {
                    out.push(if rng.one_in(2) { h.to_ascii_uppercase() } else { h.to_ascii_lowercase() });
                }
            } else {
                out.extend_from_slice(escape);
            }
            i = end;
            continue;
        }
        if unreserved(b) && rng.one_in(3) {
            let hex = if rng.one_in(2) { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 0xf)]]);
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// A request as the router fuzz target reads it: `METHOD\nPATH\n` then
/// `name: value` lines.
#[derive(Debug, Clone)]
pub struct RouterInput<'a> {
    pub method: &'a str,
    pub path: &'a [u8],
    /// Lowercased names (Envoy hands filters lowercase names).
    pub headers: Vec<(String, &'a [u8])>,
}

impl<'a> RouterInput<'a> {
    pub fn decode(data: &'a [u8]) -> Option<RouterInput<'a>> {
        let mut lines = data.split(|&b| b == b'\n');
        let method = std::str::from_utf8(lines.next()?).ok()?;
        let path = lines.next().unwrap_or_default();
        let mut headers = Vec::new();
        for l in lines {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(&l[..colon]).ok()?.to_ascii_lowercase();
            let value = &l[colon + 1..];
            headers.push((name, value.strip_prefix(b" ").unwrap_or(value)));
        }
        Some(RouterInput { method, path, headers })
    }

    pub fn encode(method: &str, path: &[u8], headers: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = format!("{method}\n").into_bytes();
        v.extend_from_slice(path);
        for (k, val) in headers {
            v.push(b'\n');
            v.extend_from_slice(k.as_bytes());
            v.extend_from_slice(b": ");
            v.extend_from_slice(val);
        }
        v
    }
}

/// The event-lines target's input: a control byte, a `max_line` byte, the
/// upload's parts as `D path` / `F path` lines, `---`, then the cluster's
/// response body.
#[derive(Debug, Clone)]
pub struct LinesInput<'a> {
    pub wrap: bool,
    pub progress: bool,
    /// Index into [`CID_BASES`], when `cid-base` was given.
    pub cid_base: Option<usize>,
    /// The body ends in trailers instead of an end-of-stream chunk.
    pub trailers: bool,
    pub max_line: usize,
    /// (is_dir, path)
    pub parts: Vec<(bool, &'a [u8])>,
    pub stream: &'a [u8],
}

/// The `cid-base` values the event-lines target picks from.
pub const CID_BASES: &[&str] = &["base32", "base58btc", "base36", "base16upper", "base64url", "identity", "base256emoji", "z", "b"];

const SEPARATOR: &[u8] = b"\n---\n";

impl<'a> LinesInput<'a> {
    pub fn decode(data: &'a [u8]) -> Option<LinesInput<'a>> {
        let (&control, rest) = data.split_first()?;
        let (&max, rest) = rest.split_first()?;
        let (parts_text, stream) = match memfind(rest, SEPARATOR) {
            Some(at) => (&rest[..at], &rest[at + SEPARATOR.len()..]),
            None => (&b""[..], rest),
        };
        let parts = parts_text
            .split(|&b| b == b'\n')
            .filter_map(|l| match l {
                [b'D', b' ', p @ ..] => Some((true, p)),
                [b'F', b' ', p @ ..] => Some((false, p)),
                _ => None,
            })
            .collect();
        Some(LinesInput {
            wrap: control & 1 != 0,
            progress: control & 2 != 0,
            cid_base: (control & 4 != 0).then(|| usize::from(control >> 4) % CID_BASES.len()),
            trailers: control & 8 != 0,
            // Small caps too: the long-line path must be reached.
            max_line: 16 + usize::from(max) * 4,
            parts,
            stream,
        })
    }

    pub fn encode(control: u8, max: u8, parts: &[(bool, &str)], stream: &[u8]) -> Vec<u8> {
        let mut v = vec![control, max];
        for (i, (dir, p)) in parts.iter().enumerate() {
            if i > 0 {
                v.push(b'\n');
            }
            v.extend_from_slice(if *dir { b"D " } else { b"F " });
            v.extend_from_slice(p.as_bytes());
        }
        v.extend_from_slice(SEPARATOR);
        v.extend_from_slice(stream);
        v
    }
}

pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
