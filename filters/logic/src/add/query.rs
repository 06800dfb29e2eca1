//! The request side of `/api/v0/add`: read the query the way Kubo reads it
//! (go-ipfs-cmds http/parse.go + option.go) and rewrite it into a query the
//! cluster proxy (ipfs-cluster v1.1.6 api/ipfsproxy `addHandler`,
//! api/add.go `AddParamsFromQuery`) reads to the same effect.

use super::checks;
use crate::gourl;
use super::cidbase::CidBase;
use super::reply::Reply;

/// Kubo's `add` options that the cluster must see under their long names
/// and with canonical values. (long name, short alias, kind)
const OPTIONS: &[(&str, Option<&str>, Kind)] = &[
    ("quiet", Some("q"), Kind::Bool),
    ("quieter", Some("Q"), Kind::Bool),
    ("silent", None, Kind::Bool),
    ("progress", Some("p"), Kind::Bool),
    ("trickle", Some("t"), Kind::Bool),
    ("only-hash", Some("n"), Kind::Bool),
    ("wrap-with-directory", Some("w"), Kind::Bool),
    ("pin", None, Kind::Bool),
    ("raw-leaves", None, Kind::Bool),
    ("nocopy", None, Kind::Bool),
    ("recursive", Some("r"), Kind::Bool),
    ("hidden", Some("H"), Kind::Bool),
    ("chunker", Some("s"), Kind::Str),
    ("hash", None, Kind::Str),
    ("cid-base", None, Kind::Str),
    ("cid-version", None, Kind::Int),
    ("stream-channels", None, Kind::Bool),
    ("upgrade-cidv0-in-output", None, Kind::Bool),
];

/// Kubo options the cluster silently ignores although they change what is
/// stored (UnixFS metadata, inlining, DAG width, MFS): a client that sets
/// them would get a different CID than Kubo gives, so they are refused.
/// `inline-limit` is not among them: it changes nothing without `inline`
/// (refused), and Kubo's own CLI sends `inline-limit=32` on every add, so
/// refusing it would refuse every `ipfs --api ... add`.
pub const UNSUPPORTED: &[&str] = &[
    "mode",
    "mtime",
    "mtime-nsecs",
    "preserve-mode",
    "preserve-mtime",
    "inline",
    "max-file-links",
    "max-directory-links",
    "max-hamt-fanout",
    "to-files",
    "fscache",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Str,
    Int,
}

/// What the response rewrite needs to know about the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddRequest {
    pub wrap: bool,
    pub progress: bool,
    pub cid_base: Option<CidBase>,
}

/// The outcome of reading the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Forward with this `:path`; rewrite the answer per `AddRequest`.
    Cluster { path: String, request: AddRequest },
    /// `only-hash`: Kubo's own answer is the right one, and the cluster
    /// proxy would pin. Forward unchanged to Kubo.
    Kubo,
    /// Answer at the edge, as Kubo would.
    Reply(Reply),
}

/// Reads an add request's `:path` (path plus query) and Content-Type, and
/// refuses what Kubo refuses, in the order go-ipfs-cmds checks it
/// (http/parse.go): several values for one option, then a missing file
/// argument, then option values.
pub fn route(path_and_query: &str, content_type: &str, refuse_unsupported: bool) -> Destination {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let pairs = parse_query(query);

    // Kubo: one value per non-list option, keyed by the long name; a short
    // and a long spelling both given collapse to one (Go map order decides
    // there, so this filter picks the long one: deterministic).
    let mut values: Vec<(&'static str, Kind, Vec<&str>, bool)> = Vec::new();
    for (key, value, _) in &pairs {
        let Some(&(long, _, kind)) =
            OPTIONS.iter().find(|(l, s, _)| *l == key.as_str() || *s == Some(key.as_str()))
        else {
            continue;
        };
        let is_long = long == key.as_str();
        match values.iter_mut().find(|(l, ..)| *l == long) {
            Some(entry) if entry.3 == is_long => entry.2.push(value),
            Some(entry) if is_long => *entry = (long, kind, vec![value], true),
            Some(_) => {}
            None => values.push((long, kind, vec![value], is_long)),
        }
    }

    // only-hash first: Kubo itself then judges everything else.
    if let Some((_, _, vals, _)) = values.iter().find(|(l, ..)| *l == "only-hash") {
        if vals.len() == 1 && parse_bool(vals[0]) == Some(true) {
            return Destination::Kubo;
        }
    }
    if let Some((long, _, vals, _)) = values.iter().find(|(_, _, vals, _)| vals.len() > 1) {
        return Destination::Reply(Reply::kubo_bad_request(&format!(
            "expected key {long} to have only a single value, received [{}]",
            vals.join(" ")
        )));
    }
    if super::multipart::boundary(content_type).is_none() {
        return Destination::Reply(Reply::kubo_bad_request("file argument 'path' is required"));
    }
    let mut canonical: Vec<(&'static str, String)> = Vec::new();
    for (long, kind, vals, _) in &values {
        let v = vals[0];
        let value = match kind {
            Kind::Str => v.to_string(),
            Kind::Bool => match parse_bool(v) {
                Some(b) => b.to_string(),
                None => return Destination::Reply(Reply::kubo_bad_request(&convert_error(v, "bool", long))),
            },
            Kind::Int => match parse_int(v) {
                Some(i) => i.to_string(),
                None => return Destination::Reply(Reply::kubo_bad_request(&convert_error(v, "int", long))),
            },
        };
        canonical.push((long, value));
    }
    let get = |name: &str| canonical.iter().find(|(l, _)| *l == name).map(|(_, v)| v.as_str());

    if refuse_unsupported {
        if let Some((key, ..)) = pairs.iter().find(|(k, ..)| UNSUPPORTED.contains(&k.as_str())) {
            return Destination::Reply(Reply::kubo_error(&format!(
                "option {key:?} is not supported when adding through ipfs-cluster"
            )));
        }
    }
    // The checks Kubo makes before its first event, in its order
    // (core/commands/add.go, then coreiface options, then the chunker).
    let hash = get("hash").unwrap_or("sha2-256").to_ascii_lowercase();
    if !checks::hash_known(&hash) {
        return Destination::Reply(Reply::kubo_error(&format!("unrecognized hash function: {hash:?}")));
    }
    let cid_base = match get("cid-base") {
        None | Some("") => None,
        Some(name) => match CidBase::by_name(name) {
            Ok(b) => Some(b),
            Err(e) => return Destination::Reply(Reply::kubo_error(&e)),
        },
    };
    let cid_base = match get("upgrade-cidv0-in-output") {
        // The deprecated flag still overrides the automatic upgrade.
        Some(up) => Some(cid_base.unwrap_or_default().with_upgrade(up == "true")),
        None => cid_base,
    };
    // Kubo: a hash other than sha2-256 implies CIDv1; the cluster would
    // try CIDv0 and fail.
    let mut extra_cid_version = false;
    match get("cid-version") {
        Some("0") if hash != "sha2-256" => {
            return Destination::Reply(Reply::kubo_error("CIDv0 only supports sha2-256"));
        }
        Some("0" | "1") => {}
        Some(v) => return Destination::Reply(Reply::kubo_error(&format!("unknown CID version: {v}"))),
        None => extra_cid_version = hash != "sha2-256",
    }
    if let Err(e) = checks::chunker(get("chunker").unwrap_or_default()) {
        return Destination::Reply(Reply::kubo_error(&e));
    }

    // Rebuild the query: known options once, long name, canonical value,
    // where the first spelling of it stood; everything else verbatim.
    let mut out = String::with_capacity(path_and_query.len() + 16);
    out.push_str(path);
    let mut emitted: Vec<&str> = Vec::new();
    let mut sep = '?';
    for (key, _, raw) in &pairs {
        let known = OPTIONS.iter().find(|(l, s, _)| *l == key.as_str() || *s == Some(key.as_str()));
        match known {
            Some((long, ..)) => {
                if emitted.contains(long) {
                    continue;
                }
                emitted.push(long);
                // Kubo ignores stream-channels over HTTP (it always streams);
                // the cluster would answer one JSON array instead.
                if matches!(*long, "stream-channels" | "cid-base" | "upgrade-cidv0-in-output") {
                    continue;
                }
                let v = get(long).unwrap_or_default();
                out.push(sep);
                out.push_str(long);
                out.push('=');
                out.push_str(&gourl::query_escape(v.as_bytes()));
            }
            None => {
                out.push(sep);
                out.push_str(raw);
            }
        }
        sep = '&';
    }
    if extra_cid_version {
        out.push(sep);
        out.push_str("cid-version=1");
    }
    let request = AddRequest {
        wrap: get("wrap-with-directory") == Some("true"),
        progress: get("progress") == Some("true"),
        cid_base,
    };
    Destination::Cluster { path: out, request }
}

fn convert_error(v: &str, ty: &str, long: &str) -> String {
    let value = if v.is_empty() { "empty value".to_string() } else { format!("value {v:?}") };
    format!("could not convert {value} to type {ty:?} (for option \"-{long}\")")
}

/// go-ipfs-cmds' bool converter: empty means true, then
/// `strconv.ParseBool(strings.ToLower(v))`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseInt(v, 0, 32)`: sign, then 0x/0o/0b/0 prefixes, `_`
/// separators only with a prefix.
pub fn parse_int(v: &str) -> Option<i32> {
    let (neg, digits) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    if body.is_empty() || (!prefixed && body.contains('_')) {
        return None;
    }
    // Underscores must sit between digits.
    if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    if clean.starts_with(['+', '-']) {
        return None;
    }
    let mag = i64::from_str_radix(&clean, radix).ok()?;
    let val = if neg { -mag } else { mag };
    i32::try_from(val).ok()
}

/// Splits a query as Go's `url.ParseQuery` does: `&` separated, a pair with
/// `;` or a bad escape is dropped, `+` is a space. Returns (key, value, raw).
fn parse_query(q: &str) -> Vec<(String, String, &str)> {
    let mut out = Vec::new();
    for raw in q.split('&') {
        if raw.is_empty() || raw.contains(';') {
            continue;
        }
        let (k, v) = raw.split_once('=').unwrap_or((raw, ""));
        // Values are passed on as text; non-UTF-8 ones are forwarded escaped.
        let text = |b: &str| gourl::unescape(b.as_bytes(), true).map(|v| String::from_utf8_lossy(&v).into_owned());
        if let (Some(k), Some(v)) = (text(k), text(v)) {
            out.push((k, v, raw));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const CT: &str = "multipart/form-data; boundary=b";

    #[test]
    fn uploads_that_are_not_multipart_are_refused_like_kubo() {
        match route("/api/v0/add?progress=bad", "application/json", true) {
            Destination::Reply(r) => assert_eq!((r.status, r.body), (400, b"file argument 'path' is required\n".to_vec())),
            other => panic!("{other:?}"),
        }
    }

    fn cluster_path(q: &str) -> String {
        match route(q, CT, true) {
            Destination::Cluster { path, .. } => path,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn aliases_become_long_names_with_canonical_values() {
        assert_eq!(cluster_path("/api/v0/add?w=1&t&p=T&pin=0&r=tRuE"), "/api/v0/add?wrap-with-directory=true&trickle=true&progress=true&pin=false&recursive=true");
        assert_eq!(cluster_path("/api/v0/add?s=size-1024&H=f"), "/api/v0/add?chunker=size-1024&hidden=false");
        assert_eq!(cluster_path("/api/v0/add?cid-version=0x1"), "/api/v0/add?cid-version=1");
        assert_eq!(cluster_path("/api/v0/add"), "/api/v0/add");
    }

    #[test]
    fn long_name_wins_over_alias() {
        assert_eq!(cluster_path("/api/v0/add?w=false&wrap-with-directory=true"), "/api/v0/add?wrap-with-directory=true");
    }

    #[test]
    fn unknown_keys_and_cluster_keys_pass_verbatim() {
        assert_eq!(cluster_path("/api/v0/add?replication-min=2&x=a%20b"), "/api/v0/add?replication-min=2&x=a%20b");
    }

    #[test]
    fn stream_channels_and_cid_base_stay_at_the_edge() {
        match route("/api/v0/add?stream-channels=false&cid-base=base32&progress=1", CT, true) {
            Destination::Cluster { path, request } => {
                assert_eq!(path, "/api/v0/add?progress=true");
                assert_eq!(request.cid_base, Some(CidBase::by_name("base32").unwrap()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cluster_path("/api/v0/add?stream-channels=false"), "/api/v0/add");
    }

    #[test]
    fn only_hash_goes_to_kubo_in_every_spelling() {
        for q in ["only-hash=true", "only-hash=1", "n=t", "n", "only-hash=", "n=TRUE"] {
            assert_eq!(route(&format!("/api/v0/add?{q}"), CT, true), Destination::Kubo, "{q}");
        }
        assert_eq!(cluster_path("/api/v0/add?only-hash=0"), "/api/v0/add?only-hash=false");
    }

    #[test]
    fn bad_values_get_kubos_400() {
        match route("/api/v0/add?p=yes", CT, true) {
            Destination::Reply(r) => {
                assert_eq!(r.status, 400);
                assert_eq!(r.body, b"could not convert value \"yes\" to type \"bool\" (for option \"-progress\")\n");
            }
            other => panic!("{other:?}"),
        }
        match route("/api/v0/add?progress=1&progress=0", CT, true) {
            Destination::Reply(r) => assert_eq!(r.body, b"expected key progress to have only a single value, received [1 0]\n"),
            other => panic!("{other:?}"),
        }
        match route("/api/v0/add?cid-version=", CT, true) {
            Destination::Reply(r) => assert_eq!(r.body, b"could not convert empty value to type \"int\" (for option \"-cid-version\")\n"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_cid_base_gets_kubos_500() {
        match route("/api/v0/add?cid-base=nope", CT, true) {
            Destination::Reply(r) => {
                assert_eq!(r.status, 500);
                assert_eq!(r.body, b"{\"Message\":\"unsupported multibase encoding: nope\",\"Code\":0,\"Type\":\"error\"}\n");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_options_are_refused_or_passed() {
        assert!(matches!(route("/api/v0/add?preserve-mtime=true", CT, true), Destination::Reply(r) if r.status == 500));
        assert!(matches!(route("/api/v0/add?inline=true&inline-limit=32", CT, true), Destination::Reply(r) if r.status == 500));
        // What Kubo v0.42's CLI sends for `ipfs add` (inline-limit at its default, no inline).
        let cli = "/api/v0/add?empty-dirs=true&encoding=json&inline-limit=32&pin=true&quieter=true&stream-channels=true";
        assert!(matches!(route(cli, CT, true), Destination::Cluster { .. }), "{:?}", route(cli, CT, true));
        assert_eq!(cluster_path_lenient("/api/v0/add?mode=0644"), "/api/v0/add?mode=0644");
    }

    fn cluster_path_lenient(q: &str) -> String {
        match route(q, CT, false) {
            Destination::Cluster { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kubos_early_checks_answer_before_the_cluster() {
        let msg = |q: &str| match route(q, CT, true) {
            Destination::Reply(r) => (r.status, String::from_utf8(r.body).unwrap()),
            other => panic!("{q}: {other:?}"),
        };
        let kubo = |m: &str| (500, format!("{{\"Message\":\"{m}\",\"Code\":0,\"Type\":\"error\"}}\n"));
        assert_eq!(msg("/api/v0/add?chunker=foo"), kubo("unrecognized chunker option: foo"));
        assert_eq!(msg("/api/v0/add?s=size-0"), kubo("chunker size must be greater than 0"));
        assert_eq!(msg("/api/v0/add?cid-version=2"), kubo("unknown CID version: 2"));
        assert_eq!(msg("/api/v0/add?hash=Nope"), kubo("unrecognized hash function: \\\"nope\\\""));
        assert_eq!(msg("/api/v0/add?hash=blake3&cid-version=0"), kubo("CIDv0 only supports sha2-256"));
    }

    #[test]
    fn other_hashes_imply_cidv1_as_in_kubo() {
        assert_eq!(cluster_path("/api/v0/add?hash=blake3"), "/api/v0/add?hash=blake3&cid-version=1");
        assert_eq!(cluster_path("/api/v0/add?hash=sha2-256"), "/api/v0/add?hash=sha2-256");
    }

    #[test]
    fn go_parse_int_rules() {
        assert_eq!(parse_int("10"), Some(10));
        assert_eq!(parse_int("0x1"), Some(1));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("1_0"), None);
        assert_eq!(parse_int("0x1_0"), Some(16));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("99999999999"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("--1"), None);
    }

    #[test]
    fn go_query_splitting() {
        let p = parse_query("a=1;b=2&c=%zz&d=x+y&&e");
        let keys: Vec<_> = p.iter().map(|(k, v, _)| (k.as_str(), v.as_str())).collect();
        assert_eq!(keys, vec![("d", "x y"), ("e", "")]);
    }
}
