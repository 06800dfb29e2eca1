//! Kubo RPC API stand-in: `/api/v0/add` and `/api/v0/version`, as Kubo HEAD 867cdc5
//! (0.44.0-dev) answers them through go-ipfs-cmds (http/handler.go, http/parse.go,
//! http/responseemitter.go, request.go, option.go) wrapped by rs/cors v1.11.1.

use crate::adder::{kubo_meta, AddOut, Adder, Flavor};
use crate::dag::{FileParams, GoErr, Prefix, DEFAULT_LINKS_PER_BLOCK};
use crate::gofmt;
use crate::gohttp::{http_error, BodyHandle, GoResponse, HandlerOutcome, Header, Request};
use crate::multipart::{self, DirIter, Entry, Meta, MultipartReader, Walker};
use crate::StandinState;
use cid::Cid;

/// Kubo version.go `CurrentVersionNumber` at the HEAD the stand-in reproduces.
pub const KUBO_VERSION: &str = "0.44.0-dev";
/// version.go `RepoVersion`.
const REPO_VERSION: u32 = 18;
/// Kubo go.mod `go` directive (what `runtime.Version()` reports in a release build).
const GO_VERSION: &str = "go1.26.5";

/// go-ipfs-cmds http/responseemitter.go `AllowedExposedHeaders`.
pub const EXPOSED: &str = "X-Stream-Output, X-Chunked-Output, X-Content-Length";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Bool,
    Int,
    Uint,
    Int64,
    Str,
    Strs,
}

impl Ty {
    /// reflect.Kind.String()
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Uint => "uint",
            Ty::Int64 => "int64",
            Ty::Str => "string",
            Ty::Strs => "array",
        }
    }
}

/// Option table of `ipfs add` (core/commands/add.go) plus the root options
/// (core/commands/root.go) — names, aliases and types.
const OPTIONS: &[(&[&str], Ty)] = &[
    (&["recursive", "r"], Ty::Bool),
    (&["dereference-args"], Ty::Bool),
    (&["stdin-name"], Ty::Str),
    (&["hidden", "H"], Ty::Bool),
    (&["ignore"], Ty::Strs),
    (&["ignore-rules-path"], Ty::Str),
    (&["empty-dirs", "E"], Ty::Bool),
    (&["dereference-symlinks"], Ty::Bool),
    (&["quiet", "q"], Ty::Bool),
    (&["quieter", "Q"], Ty::Bool),
    (&["silent"], Ty::Bool),
    (&["progress", "p"], Ty::Bool),
    (&["only-hash", "n"], Ty::Bool),
    (&["wrap-with-directory", "w"], Ty::Bool),
    (&["pin"], Ty::Bool),
    (&["pin-name"], Ty::Str),
    (&["to-files"], Ty::Str),
    (&["cid-version"], Ty::Int),
    (&["hash"], Ty::Str),
    (&["raw-leaves"], Ty::Bool),
    (&["chunker", "s"], Ty::Str),
    (&["trickle", "t"], Ty::Bool),
    (&["max-file-links"], Ty::Int),
    (&["max-directory-links"], Ty::Int),
    (&["max-hamt-fanout"], Ty::Int),
    (&["inline"], Ty::Bool),
    (&["inline-limit"], Ty::Int),
    (&["nocopy"], Ty::Bool),
    (&["fscache"], Ty::Bool),
    (&["preserve-mode"], Ty::Bool),
    (&["preserve-mtime"], Ty::Bool),
    (&["mode"], Ty::Uint),
    (&["mtime"], Ty::Int64),
    (&["mtime-nsecs"], Ty::Uint),
    (&["fast-provide-root"], Ty::Bool),
    (&["fast-provide-dag"], Ty::Bool),
    (&["fast-provide-wait"], Ty::Bool),
    // root / global options
    (&["repo-dir"], Ty::Str),
    (&["config-file"], Ty::Str),
    (&["config", "c"], Ty::Str),
    (&["debug", "D"], Ty::Bool),
    (&["help"], Ty::Bool),
    (&["h"], Ty::Bool),
    (&["local", "L"], Ty::Bool),
    (&["offline"], Ty::Bool),
    (&["api"], Ty::Str),
    (&["api-auth"], Ty::Str),
    (&["cid-base"], Ty::Str),
    (&["upgrade-cidv0-in-output"], Ty::Bool),
    (&["encoding", "enc"], Ty::Str),
    (&["stream-channels"], Ty::Bool),
    (&["timeout"], Ty::Str),
];

/// Root options only (what `/api/v0/version` accepts).
const ROOT_OPTIONS_FROM: usize = 37;

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Bool(bool),
    Int(i64),
    Str(String),
    Strs(Vec<String>),
}

struct Opts(Vec<(String, Val)>);

impl Opts {
    fn bool(&self, k: &str) -> Option<bool> {
        self.0.iter().find(|(n, _)| n == k).and_then(|(_, v)| if let Val::Bool(b) = v { Some(*b) } else { None })
    }
    fn int(&self, k: &str) -> Option<i64> {
        self.0.iter().find(|(n, _)| n == k).and_then(|(_, v)| if let Val::Int(b) = v { Some(*b) } else { None })
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).and_then(|(_, v)| if let Val::Str(s) = v { Some(s.as_str()) } else { None })
    }
}

/// go-ipfs-cmds option.go converters.
fn convert(ty: Ty, v: &str) -> Option<Val> {
    match ty {
        Ty::Bool => {
            if v.is_empty() {
                return Some(Val::Bool(true));
            }
            gofmt::parse_bool(&v.to_lowercase()).map(Val::Bool)
        }
        Ty::Int => gofmt::parse_int(v, true, 32).map(Val::Int),
        Ty::Int64 => gofmt::parse_int(v, true, 64).map(Val::Int),
        Ty::Uint => {
            if v.starts_with(['-', '+']) {
                return None;
            }
            gofmt::parse_int(v, true, 33).filter(|n| *n >= 0 && *n <= u32::MAX as i64).map(Val::Int)
        }
        Ty::Str => Some(Val::Str(v.to_string())),
        Ty::Strs => Some(Val::Strs(vec![v.to_string()])),
    }
}

/// http/parse.go `parseRequest` option handling + request.go `checkAndConvertOptions`.
fn parse_options(query: &[(String, Vec<String>)], table: &[(&[&str], Ty)]) -> Result<Opts, String> {
    let mut raw: Vec<(String, Ty, Vec<String>)> = Vec::new();
    for (k, v) in query {
        if k == "arg" {
            continue;
        }
        let Some((names, ty)) = table.iter().find(|(names, _)| names.contains(&k.as_str())) else {
            continue; // unknown options are kept as strings and never read
        };
        let name = names[0].to_string();
        if *ty != Ty::Strs && v.len() > 1 {
            return Err(format!("expected key {} to have only a single value, received [{}]", name, v.join(" ")));
        }
        raw.retain(|(n, _, _)| *n != name);
        raw.push((name, *ty, v.clone()));
    }
    let mut out = Vec::new();
    for (name, ty, v) in raw {
        if ty == Ty::Strs {
            out.push((name, Val::Strs(v)));
            continue;
        }
        match convert(ty, &v[0]) {
            Some(val) => out.push((name, val)),
            None => {
                let value = if v[0].is_empty() { "empty value".to_string() } else { format!("value {}", gofmt::go_quote(v[0].as_bytes())) };
                return Err(format!("could not convert {} to type {} (for option {})", value, gofmt::go_quote(ty.name().as_bytes()), gofmt::go_quote(format!("-{}", name).as_bytes())));
            }
        }
    }
    Ok(Opts(out))
}

/// go-multihash `Names` (what `mh.Names[strings.ToLower(h)]` accepts).
pub fn multihash_known(name: &str) -> bool {
    const FIXED: &[&str] = &[
        "identity", "sha1", "sha2-256", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512",
        "dbl-sha2-256", "murmur3-x64-64", "keccak-224", "keccak-256", "keccak-384", "keccak-512",
        "blake3", "shake-128", "shake-256", "sha2-256-trunc254-padded", "x11", "md5", "sha2-224",
        "sha2-512-224", "sha2-512-256", "poseidon-bls12_381-a2-fc1",
    ];
    if FIXED.contains(&name) {
        return true;
    }
    let bits = |p: &str, max: u32| {
        name.strip_prefix(p).and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 8 && n <= max && n % 8 == 0)
    };
    bits("blake2b-", 512) || bits("blake2s-", 256)
}

/// go-multibase `EncoderByName` → rust-multibase base.
fn multibase_by_name(s: &str) -> Result<multibase::Base, String> {
    use multibase::Base::*;
    let by_code = |c: char| -> Option<multibase::Base> { multibase::Base::from_code(c).ok() };
    let b = if s.chars().count() == 1 {
        by_code(s.chars().next().unwrap_or(' '))
    } else {
        match s {
            "identity" => Some(Identity),
            "base2" => Some(Base2),
            "base8" => Some(Base8),
            "base10" => Some(Base10),
            "base16" => Some(Base16Lower),
            "base16upper" => Some(Base16Upper),
            "base32" => Some(Base32Lower),
            "base32upper" => Some(Base32Upper),
            "base32pad" => Some(Base32PadLower),
            "base32padupper" => Some(Base32PadUpper),
            "base32hex" => Some(Base32HexLower),
            "base32hexupper" => Some(Base32HexUpper),
            "base32hexpad" => Some(Base32HexPadLower),
            "base32hexpadupper" => Some(Base32HexPadUpper),
            "base36" => Some(Base36Lower),
            "base36upper" => Some(Base36Upper),
            "base58btc" => Some(Base58Btc),
            "base58flickr" => Some(Base58Flickr),
            "base64" => Some(Base64),
            "base64url" => Some(Base64Url),
            "base64pad" => Some(Base64Pad),
            "base64urlpad" => Some(Base64UrlPad),
            _ => None,
        }
    };
    b.ok_or_else(|| format!("unsupported multibase encoding: {}", s))
}

/// cmdenv.GetCidEncoder + cidenc.Encoder.Encode.
struct CidEnc {
    base: Option<multibase::Base>,
    upgrade: bool,
}

impl CidEnc {
    fn encode(&self, c: &Cid) -> String {
        let mut c = *c;
        if self.upgrade && c.version() == cid::Version::V0 {
            c = Cid::new_v1(c.codec(), *c.hash());
        }
        if c.version() == cid::Version::V0 {
            return c.to_string();
        }
        match self.base {
            Some(b) => multibase::encode(b, c.to_bytes()),
            None => c.to_string(),
        }
    }
}

/// The response emitter (http/responseemitter.go) for one request.
struct Emitter<'a> {
    w: &'a mut GoResponse,
    body: BodyHandle,
    has_body: bool,
    preamble_done: bool,
}

impl Emitter<'_> {
    /// doPreamble: `err` = Some(msg) sends the error as the whole response (`sendErr`).
    fn preamble(&mut self, err: Option<&str>) {
        self.preamble_done = true;
        let h = &mut self.w.header;
        h.set("Access-Control-Allow-Headers", EXPOSED);
        h.set("Access-Control-Expose-Headers", EXPOSED);
        h.set("Trailer", "X-Stream-Error");
        if self.has_body && !self.body.0.borrow().saw_eof {
            h.set("Connection", "close");
        }
        if let Some(msg) = err {
            h.set("Content-Type", "application/json");
            self.w.write_header(500);
            self.w.write(&error_json(msg, true));
            return;
        }
        h.set("X-Chunked-Output", "1");
        h.set("Content-Type", "application/json");
        self.w.write_header(200);
    }

    fn emit(&mut self, line: &[u8]) {
        if !self.preamble_done {
            self.preamble(None);
        }
        self.w.write(line);
        self.w.flush();
    }

    fn close(&mut self, err: Option<&str>) {
        if !self.preamble_done {
            self.preamble(err);
        } else if let Some(e) = err {
            self.w.header.set("X-Stream-Error", e);
        }
    }
}

/// cmds.Error JSON (error.go MarshalJSON), `json.Encoder` adds "\n".
pub fn error_json(msg: &str, newline: bool) -> Vec<u8> {
    let mut o = b"{\"Message\":".to_vec();
    gofmt::json_string(&mut o, msg.as_bytes());
    o.extend_from_slice(b",\"Code\":0,\"Type\":\"error\"}");
    if newline {
        o.push(b'\n');
    }
    o
}

/// core/commands/add.go `AddEvent`, json.Encoder output.
fn event_json(name: &[u8], hash: &str, bytes: u64, size: Option<u64>, meta: &Meta) -> Vec<u8> {
    let mut o = b"{\"Name\":".to_vec();
    gofmt::json_string(&mut o, name);
    if !hash.is_empty() {
        o.extend_from_slice(b",\"Hash\":");
        gofmt::json_string(&mut o, hash.as_bytes());
    }
    if bytes != 0 {
        o.extend_from_slice(format!(",\"Bytes\":{}", bytes).as_bytes());
    }
    if let Some(s) = size {
        o.extend_from_slice(format!(",\"Size\":\"{}\"", s).as_bytes());
    }
    let (mode, mtime, nsecs) = kubo_meta(meta);
    if let Some(m) = mode {
        o.extend_from_slice(format!(",\"Mode\":\"{}\"", m).as_bytes());
    }
    if mtime != 0 {
        o.extend_from_slice(format!(",\"Mtime\":{}", mtime).as_bytes());
    }
    if nsecs != 0 {
        o.extend_from_slice(format!(",\"MtimeNsecs\":{}", nsecs).as_bytes());
    }
    o.extend_from_slice(b"}\n");
    o
}

/// Allowed CORS origins by default (core/corehttp/commands.go), `<port>` patched.
fn origin_allowed(origin: &str, port: u16) -> bool {
    let p = port.to_string();
    let allowed = [
        format!("http://127.0.0.1:{}", p),
        format!("https://127.0.0.1:{}", p),
        format!("http://[::1]:{}", p),
        format!("https://[::1]:{}", p),
        format!("http://localhost:{}", p),
        format!("https://localhost:{}", p),
        "chrome-extension://nibjojkomfdiaoajekhjakgkdhaomnch".to_string(),
        "chrome-extension://hjoieblefckbooibpepigmacodalfndh".to_string(),
    ];
    allowed.iter().any(|a| a == origin)
}

/// rs/cors handlePreflight with Kubo's options (AllowedMethods [POST], AllowedHeaders
/// Origin/Accept/Content-Type/X-Requested-With, no credentials, no max-age).
pub fn preflight(origin: &str, method: &str, asked: &str, h: &mut Header, port: u16) {
    h.set("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if origin.is_empty() || !origin_allowed(&origin.to_lowercase(), port) {
        return;
    }
    let method = method.to_uppercase();
    if method != "POST" && method != "OPTIONS" {
        return;
    }
    let ok_headers = ["origin", "accept", "content-type", "x-requested-with"];
    if !asked.split(',').map(|h| h.trim().to_lowercase()).filter(|h| !h.is_empty()).all(|h| ok_headers.contains(&h.as_str())) {
        return;
    }
    h.set("Access-Control-Allow-Origin", origin);
    h.set("Access-Control-Allow-Methods", &method);
    if !asked.trim().is_empty() {
        h.set("Access-Control-Allow-Headers", asked);
    }
}

pub fn handle(state: &StandinState, req: &Request, w: &mut GoResponse) -> HandlerOutcome {
    if req.path == "/__standin/pins" {
        crate::pins_hook(state, req, w);
        return HandlerOutcome::Done;
    }
    if !req.path.starts_with("/api/v0/") {
        http_error(w, "404 page not found", 404);
        return HandlerOutcome::Done;
    }
    // rs/cors Handler: preflight or actual request.
    if req.method == "OPTIONS" && !req.header.get("Access-Control-Request-Method").is_empty() {
        preflight(
            req.header.get("Origin"),
            req.header.get("Access-Control-Request-Method"),
            req.header.get("Access-Control-Request-Headers"),
            &mut w.header,
            state.port,
        );
        w.write_header(204);
        return HandlerOutcome::Done;
    }
    w.header.set("Vary", "Origin");
    // rs/cors handleActualRequest: an allowed Origin gets ACAO when the method is in
    // the CORS AllowedMethods (Kubo: POST only); no exposed headers, no credentials.
    let origin = req.header.get("Origin");
    if !origin.is_empty() && origin_allowed(&origin.to_lowercase(), state.port) && req.method == "POST" {
        w.header.set("Access-Control-Allow-Origin", origin);
    }
    match req.method.as_str() {
        "OPTIONS" => {
            w.header.set("Allow", "OPTIONS, POST");
            w.write_header(204);
            return HandlerOutcome::Done;
        }
        "POST" => {}
        _ => {
            w.header.set("Allow", "OPTIONS, POST");
            http_error(w, "405 - Method Not Allowed", 405);
            return HandlerOutcome::Done;
        }
    }
    let origin = req.header.get("Origin");
    let referer = req.header.get("Referer");
    let referer_origin = referer.split_once("://").map(|(s, rest)| format!("{}://{}", s, rest.split('/').next().unwrap_or(""))).unwrap_or_default();
    if (!origin.is_empty() && !origin_allowed(origin, state.port)) || (!referer.is_empty() && !origin_allowed(&referer_origin, state.port)) {
        http_error(w, "403 - Forbidden", 403);
        return HandlerOutcome::Done;
    }
    let cmd = &req.path["/api/v0/".len()..];
    match cmd {
        "add" => handle_add(state, req, w),
        "version" => handle_version(req, w),
        _ => http_error(w, "404 page not found", 404),
    }
    HandlerOutcome::Done
}

fn handle_version(req: &Request, w: &mut GoResponse) {
    let q = req.query();
    let opts = match parse_options(&q, &OPTIONS[ROOT_OPTIONS_FROM..]) {
        Ok(o) => o,
        Err(e) => return http_error(w, &e, 400),
    };
    w.header.set("Server", &format!("kubo/{}", KUBO_VERSION));
    if let Some(enc) = opts.str("encoding") {
        if enc != "json" {
            return http_error(w, &format!("invalid encoding: {}", enc), 400);
        }
    }
    // EmitOnce → cmds.Single: no X-Chunked-Output.
    let h = &mut w.header;
    h.set("Access-Control-Allow-Headers", EXPOSED);
    h.set("Access-Control-Expose-Headers", EXPOSED);
    h.set("Trailer", "X-Stream-Error");
    if req.has_body() && !req.body.0.borrow().saw_eof {
        h.set("Connection", "close");
    }
    h.set("Content-Type", "application/json");
    w.write_header(200);
    let os = if cfg!(target_os = "linux") { "linux" } else { std::env::consts::OS };
    let arch = if cfg!(target_arch = "x86_64") { "amd64" } else if cfg!(target_arch = "aarch64") { "arm64" } else { std::env::consts::ARCH };
    w.write(format!(
        "{{\"Version\":\"{}\",\"Commit\":\"\",\"Repo\":\"{}\",\"System\":\"{}/{}\",\"Golang\":\"{}\"}}\n",
        KUBO_VERSION, REPO_VERSION, arch, os, GO_VERSION
    ).as_bytes());
    w.flush();
}

fn handle_add(state: &StandinState, req: &Request, w: &mut GoResponse) {
    let q = req.query();
    // parse.go: duplicate keys are rejected while options are collected, before the
    // body is looked at; conversions happen after (NewRequest).
    let duplicated = q.iter().any(|(k, v)| {
        v.len() > 1 && OPTIONS.iter().any(|(n, ty)| *ty != Ty::Strs && n.contains(&k.as_str()))
    });
    let opts_res = parse_options(&q, OPTIONS);
    if duplicated {
        if let Err(e) = opts_res {
            return http_error(w, &e, 400);
        }
    }
    // Multipart body?
    let ct = req.header.get("Content-Type");
    let base = ct.split(';').next().unwrap_or("").trim().to_lowercase();
    let mut boundary: Option<String> = None;
    if base == "multipart/form-data" {
        match multipart::parse_media_type(ct) {
            Err(_) => return http_error(w, "request Content-Type isn't multipart/form-data", 400),
            Ok((_, params)) => match multipart::param(&params, "boundary") {
                None => return http_error(w, "no multipart boundary param in Content-Type", 400),
                Some(b) => boundary = Some(String::from_utf8_lossy(b).into_owned()),
            },
        }
    }
    let Some(boundary) = boundary else {
        return http_error(w, "file argument 'path' is required", 400);
    };
    let opts = match opts_res {
        Ok(o) => o,
        Err(e) => return http_error(w, &e, 400),
    };
    w.header.set("Server", &format!("kubo/{}", KUBO_VERSION));
    if let Some(t) = opts.str("timeout") {
        if parse_go_duration(t).is_none() {
            return; // handler.go: returns without writing anything
        }
    }
    if let Some(enc) = opts.str("encoding") {
        if enc != "json" {
            return http_error(w, &format!("invalid encoding: {}", enc), 400);
        }
    }
    let mut em = Emitter { w, body: req.body.clone(), has_body: req.has_body(), preamble_done: false };
    let mr = MultipartReader::new(req.body.clone(), &boundary);
    let mut walker = Walker::new(mr);
    let res = run_add(state, &opts, &mut walker, &mut em);
    em.close(res.err().as_deref());
}

/// Go time.ParseDuration acceptance (value unused: the stand-in never times out).
fn parse_go_duration(s: &str) -> Option<()> {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return Some(());
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 || rest[..n] == *"." {
            return None;
        }
        rest = &rest[n..];
        let u = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"].iter().find(|u| rest.starts_with(*u))?;
        rest = &rest[u.len()..];
    }
    Some(())
}

/// add.go `Run`. Returns the error that ends the command (or Ok).
fn run_add<R: crate::dag::GoRead>(state: &StandinState, o: &Opts, walker: &mut Walker<R>, em: &mut Emitter) -> Result<(), String> {
    let progress = o.bool("progress").unwrap_or(false);
    let trickle = o.bool("trickle").unwrap_or(false);
    let wrap = o.bool("wrap-with-directory").unwrap_or(false);
    let only_hash = o.bool("only-hash").unwrap_or(false);
    let silent = o.bool("silent").unwrap_or(false);
    let chunker = o.str("chunker").unwrap_or("").to_string();
    let mut dopin = o.bool("pin").unwrap_or(true);
    let pin_name = o.str("pin-name");
    let raw = o.bool("raw-leaves");
    let max_file_links = o.int("max-file-links");
    let nocopy = o.bool("nocopy").unwrap_or(false);
    let cid_ver = o.int("cid-version");
    let hash = o.str("hash").unwrap_or("").to_string();
    let inline = o.bool("inline").unwrap_or(false);
    let inline_limit = o.int("inline-limit").unwrap_or(32);
    let to_files = o.str("to-files");
    let preserve = o.bool("preserve-mode").unwrap_or(false) || o.bool("preserve-mtime").unwrap_or(false);
    let mode = o.int("mode").unwrap_or(0);
    let mtime = o.int("mtime").unwrap_or(0);
    let mtime_nsecs = o.int("mtime-nsecs").unwrap_or(0);

    if inline && inline_limit > 128 {
        return Err(format!("inline-limit {} exceeds maximum allowed size of 128 bytes", inline_limit));
    }
    // cmdutils.ValidatePinName (MaxPinNameBytes = 255)
    if let Some(n) = pin_name {
        if n.len() > 255 {
            return Err(format!("pin name is {} bytes (max 255 bytes)", n.len()));
        }
    }
    let chunker = if chunker.is_empty() { "size-262144".to_string() } else { chunker };
    let hash = if hash.is_empty() { "sha2-256".to_string() } else { hash };
    if only_hash {
        dopin = false;
    }
    let mut rbset = raw.is_some();
    let mut rawblks = raw.unwrap_or(false);
    if preserve || mode != 0 || mtime != 0 {
        if rbset && rawblks {
            return Err("raw-leaves can't be used with UnixFS metadata like mode or modification time".into());
        }
        rbset = true;
        rawblks = false;
    }
    if only_hash && to_files.is_some() {
        return Err("only-hash and to-files options are not compatible".into());
    }
    if !dopin && pin_name.is_some() {
        return Err("pin-name option requires pin to be set".into());
    }
    if wrap && to_files.is_some() {
        return Err("wrap-with-directory and to-files options are not compatible".into());
    }
    let hash_l = hash.to_lowercase();
    if !multihash_known(&hash_l) {
        return Err(format!("unrecognized hash function: {}", gofmt::go_quote(hash_l.as_bytes())));
    }
    let base = match o.str("cid-base") {
        Some(b) if !b.is_empty() => Some(multibase_by_name(b)?),
        _ => None,
    };
    let mut enc = CidEnc { base, upgrade: base.is_some_and(|b| b != multibase::Base::Base58Btc) };
    if let Some(u) = o.bool("upgrade-cidv0-in-output") {
        enc.upgrade = u;
    }
    if mode == 0 && mtime == 0 && mtime_nsecs != 0 {
        return Err("option \"mtime-nsecs\" requires \"mtime\" to be provided as well".into());
    }
    // Options the stand-in does not reproduce (they change the DAG or need a repo).
    for (k, on) in [
        ("inline", inline),
        ("to-files", to_files.is_some()),
        ("preserve-mode/preserve-mtime/mode/mtime", preserve || mode != 0 || mtime != 0),
        ("max-directory-links", o.int("max-directory-links").is_some()),
        ("max-hamt-fanout", o.int("max-hamt-fanout").is_some()),
    ] {
        if on {
            return Err(format!("standin: option {} is not implemented", k));
        }
    }

    let mut added = 0usize;
    let mut top = DirIter::root();
    let mut wrapped = false;
    let prefix_file = |ver: i64| -> Result<FileParams, String> {
        // coreiface/options/unixfs.go UnixfsAddOptions.
        if nocopy && !rawblks && rbset {
            return Err("nocopy option requires '--raw-leaves' to be enabled as well".into());
        }
        let mut ver = ver;
        if hash_l != "sha2-256" {
            match ver {
                0 => return Err("CIDv0 only supports sha2-256".into()),
                1 | -1 => ver = 1,
                v => return Err(format!("unknown CID version: {}", v)),
            }
        } else if ver < 0 {
            ver = 0;
        }
        let raw_leaves = if ver > 0 && !rbset { true } else { rawblks || nocopy };
        if ver != 0 && ver != 1 {
            return Err(format!("unknown CID version: {}", ver));
        }
        if hash_l != "sha2-256" {
            return Err(format!("standin: hash function {} is not implemented", hash_l));
        }
        if nocopy {
            return Err("either the filestore or the urlstore must be enabled to use nocopy, see: https://github.com/ipfs/kubo/blob/master/docs/experimental-features.md#ipfs-filestore".into());
        }
        Ok(FileParams {
            prefix: Prefix { version: ver as u8 },
            raw_leaves,
            chunk_size: 0,
            max_links: max_file_links.filter(|n| *n > 0).map(|n| n as usize).unwrap_or(DEFAULT_LINKS_PER_BLOCK),
            trickle,
        })
    };
    loop {
        // The top-level entries: the multipart root, or one unnamed directory (wrap).
        let (name, entry) = if wrap {
            if wrapped {
                break;
            }
            wrapped = true;
            (Vec::new(), Entry::Dir { path: b"/".to_vec(), meta: Meta::default() })
        } else {
            match walker.next(&mut top) {
                Some(x) => x,
                None => break,
            }
        };
        let is_dir = matches!(entry, Entry::Dir { .. });
        let meta = match &entry {
            Entry::Dir { meta, .. } | Entry::File { meta } | Entry::Symlink { meta, .. } => meta.clone(),
        };
        let file = prefix_file(cid_ver.unwrap_or(-1))?;
        let enc = &enc;
        let mut sink = |ev: AddOut| -> Result<(), GoErr> {
            // add.go: a named non-directory entry keeps its own name; otherwise the
            // adder's name is joined to the entry name.
            let out_name = if !is_dir && !name.is_empty() { name.clone() } else { multipart::path_join(&name, &ev.name) };
            let hash = ev.cid.map(|c| enc.encode(&c)).unwrap_or_default();
            let size = ev.cid.map(|_| ev.size);
            em.emit(&event_json(&out_name, &hash, ev.bytes, size, &meta));
            Ok(())
        };
        let mut adder = Adder::new(Flavor::Kubo, file, chunker.clone(), &mut sink);
        adder.progress = progress;
        adder.silent = silent;
        let root = adder.add_all(walker, entry).map_err(|e| e.to_string())?;
        drop(adder);
        if dopin {
            state.pins.lock().unwrap_or_else(|p| p.into_inner()).push(root.cid.to_string());
        }
        added += 1;
    }
    if let Some(e) = top.err() {
        return Err(e.to_string());
    }
    if added == 0 {
        return Err("expected a file argument".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_conversion_messages() {
        let q = gofmt::parse_query("p=xyz");
        assert_eq!(
            parse_options(&q, OPTIONS).err().unwrap(),
            "could not convert value \"xyz\" to type \"bool\" (for option \"-progress\")"
        );
        let q = gofmt::parse_query("cid-version=");
        assert_eq!(
            parse_options(&q, OPTIONS).err().unwrap(),
            "could not convert empty value to type \"int\" (for option \"-cid-version\")"
        );
        let q = gofmt::parse_query("w=TRUE&t=1&n=&cid-version=0x1");
        let o = parse_options(&q, OPTIONS).unwrap();
        assert_eq!(o.bool("wrap-with-directory"), Some(true));
        assert_eq!(o.bool("trickle"), Some(true));
        assert_eq!(o.bool("only-hash"), Some(true));
        assert_eq!(o.int("cid-version"), Some(1));
        let q = gofmt::parse_query("chunker=a&chunker=b");
        assert_eq!(
            parse_options(&q, OPTIONS).err().unwrap(),
            "expected key chunker to have only a single value, received [a b]"
        );
    }

    #[test]
    fn cid_base_upgrade() {
        let c: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH".parse().unwrap();
        let e = CidEnc { base: Some(multibase::Base::Base32Lower), upgrade: true };
        assert_eq!(e.encode(&c), "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y");
        let e = CidEnc { base: Some(multibase::Base::Base58Btc), upgrade: false };
        assert_eq!(e.encode(&c), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        assert_eq!(multibase_by_name("nope").unwrap_err(), "unsupported multibase encoding: nope");
    }

    #[test]
    fn event_shapes() {
        let m = Meta::default();
        assert_eq!(event_json(b"a", "", 0, None, &m), b"{\"Name\":\"a\"}\n");
        assert_eq!(event_json(b"a", "Qm", 0, Some(0), &m), b"{\"Name\":\"a\",\"Hash\":\"Qm\",\"Size\":\"0\"}\n");
        let m = Meta { mode: 0o644, mtime: Some((5, 7)) };
        assert_eq!(
            event_json(b"f", "", 3, None, &m),
            b"{\"Name\":\"f\",\"Bytes\":3,\"Mode\":\"0644\",\"Mtime\":5,\"MtimeNsecs\":7}\n"
        );
    }
}
