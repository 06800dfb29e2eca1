//! Gateway reads that Envoy routes itself, without the router.
//!
//! A public gateway's `GET`/`HEAD` of a clean `/ipfs/…` or `/ipns/…` path is
//! the bulk of an edge's traffic, and the router would only mark it
//! `gateway` and drop `Authorization`. Envoy's own route does that natively
//! (a path regex, a method match, a header removal and the mark written by
//! the route), so those reads enter no Wasm filter: a Wasm context with one
//! header write costs about as much as the whole 10 % a read may spend at
//! the edge (BENCHMARKS.md, "The edge as deployed").
//!
//! The route takes only paths that the router would send to the gateway as
//! they are: printable, no percent-escape, no `;`, no empty or dot-only
//! segment. Everything else (an escape, a dot segment, another method)
//! starts on the router's routes as before. What the route does not check,
//! and the router would: whether the root is a CID (`/ipfs/`) or an IPNS
//! name (`/ipns/`), the query string (Envoy's path match excludes it), and
//! method-override headers (Gateway API cannot match a header's absence).
//! Kubo's gateway answers all three itself: a bad root is its own 400, and
//! it reads neither the query's `;` nor a method override as anything but
//! data. None of them chooses a backend or passes a guard.

use super::config::{Access, Policy};

/// The path regex of the native read route (RE2 syntax, matched against the
/// whole path without its query, as Envoy's `safe_regex` route match and
/// Gateway API's `RegularExpression` path match do). manifests/envoy/
/// envoy.yaml spells it out and a test ties the two; the deployer renders
/// it from here. [`is_native_read_path`] is the same rule in plain Rust.
pub const PATH_REGEX: &str = "/ip[fn]s(/[-A-Za-z0-9._~!$&'()*+,=:@]*[-A-Za-z0-9_~!$&'()*+,=:@][-A-Za-z0-9._~!$&'()*+,=:@]*)+/?";

/// The methods the native read route matches (one route match each).
pub const METHODS: &[&str] = &["GET", "HEAD"];

/// What the native read route does besides sending the read to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeReads {
    /// Remove `Authorization` (the router's own rule for a public gateway).
    pub strip_authorization: bool,
}

/// Whether `policy` lets gateway reads go the native route, and how. Not when
/// the gateway is not public (the router must check the credential, or
/// refuse), nor when a health or platform path lies under `/ipfs` or `/ipns`
/// (the router gives those to someone else).
pub fn native_reads(policy: &Policy) -> Option<NativeReads> {
    if policy.gateway != Access::Public {
        return None;
    }
    let under = |seg: &str| seg == "ipfs" || seg == "ipns";
    let health = policy.health_paths.iter().any(|p| p.split('/').nth(1).is_some_and(under));
    let platform = policy.platform_paths.iter().any(|p| p.first_segment().is_some_and(under));
    if health || platform {
        return None;
    }
    Some(NativeReads { strip_authorization: !policy.forward_authorization })
}

/// Whether a request takes the native read route: `method` is one of
/// [`METHODS`] and the path of `raw_path` (before any `?`) matches
/// [`PATH_REGEX`] whole.
pub fn is_native_read(method: &str, raw_path: &[u8]) -> bool {
    let path = raw_path.split(|&b| b == b'?').next().unwrap_or_default();
    METHODS.contains(&method) && is_native_read_path(path)
}

/// [`PATH_REGEX`] as a plain function.
pub fn is_native_read_path(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/ipfs").or_else(|| path.strip_prefix(b"/ipns")) else {
        return false;
    };
    let rest = rest.strip_suffix(b"/").unwrap_or(rest);
    let Some(rest) = rest.strip_prefix(b"/") else {
        return false;
    };
    rest.split(|&b| b == b'/').all(|seg| seg.iter().all(|&b| is_segment_byte(b)) && seg.iter().any(|&b| b != b'.'))
}

/// RFC 3986 `pchar` without `%` (no escapes to decode) and `;`.
fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{classify, Decision, Request};
    use crate::backend::Backend;

    const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

    fn paths() -> Vec<String> {
        let mut v: Vec<String> = [
            "/ipfs/x", "/ipns/x", "/ipfs/", "/ipfs", "/ipns", "/ipfsx/a", "/ipfs/a/", "/ipfs/a//", "/ipfs//a", "/ipfs/./a",
            "/ipfs/a/..", "/ipfs/a/...", "/ipfs/a/.b", "/ipfs/a/%20", "/ipfs/a;b", "/ipfs/a b", "/ipfs/a\\b", "/ipfs/a#b",
            "/ipfs/é", "/IPFS/a", "/ipfs/a/b/c.txt", "/ipns/en.wikipedia-on-ipfs.org/wiki/", "/ipfs/a?b", "/", "/ipfs/a/(x)!$&'*+,=:@~",
            "/ipfs/\u{7f}", "/ipfs/a\tb", "/api/v0/cat", "//ipfs/a", "/ipfs/-", "/ipfs/_/.", "/ipfs/../ipfs/a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // The hostile corpus's targets.
        for row in include_str!("../../tests/corpus/hostile.jsonl").lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            v.push(row["target"].as_str().unwrap().to_string());
        }
        v.push(format!("/ipfs/{CID}/dir/file.txt"));
        v.push(format!("/ipfs/{CID}"));
        // Every single byte in a segment, and at its edges.
        for b in 0u8..=0x7f {
            let c = b as char;
            v.push(format!("/ipfs/{CID}/{c}"));
            v.push(format!("/ipfs/{CID}/a{c}b/"));
            v.push(format!("/ipns/{c}{c}"));
        }
        v
    }

    #[test]
    fn the_function_is_the_regex() {
        let re = regex::Regex::new(&format!("^(?:{PATH_REGEX})$")).unwrap();
        for p in paths() {
            assert_eq!(is_native_read_path(p.as_bytes()), re.is_match(&p), "{p:?}");
        }
    }

    /// What the native route takes, the router would send to the gateway
    /// with the same path, unless it is one of the checks left to Kubo's
    /// gateway: the root, the query.
    #[test]
    fn a_native_read_is_one_the_router_sends_to_the_gateway() {
        let policy = Policy::default();
        assert_eq!(native_reads(&policy), Some(NativeReads { strip_authorization: true }));
        let mut taken = 0;
        for p in paths() {
            for method in ["GET", "HEAD", "POST", "OPTIONS", "get"] {
                if !is_native_read(method, p.as_bytes()) {
                    continue;
                }
                taken += 1;
                // The query is Kubo's gateway's to read: judged without it.
                let path = p.split('?').next().unwrap();
                let d = classify(&policy, &Request { method, path: path.as_bytes(), headers: &[] });
                match d {
                    Decision::Route { backend: Backend::Gateway, strip_authorization: true, .. } => {}
                    Decision::Refuse(r) if r.status == 400 && (r.message.starts_with("invalid CID") || r.message.starts_with("invalid IPNS")) => {}
                    other => panic!("{method} {p:?}: native, but the router decides {other:?}"),
                }
            }
        }
        assert!(taken > 100, "{taken}");
    }

    #[test]
    fn only_a_public_gateway_without_paths_of_others_under_it_reads_natively() {
        let p = |json: &str| native_reads(&Policy::from_json(json.as_bytes()).unwrap());
        assert_eq!(p(r#"{"forward_authorization": true}"#), Some(NativeReads { strip_authorization: false }));
        assert_eq!(p(r#"{"gateway": "credential"}"#), None);
        assert_eq!(p(r#"{"gateway": "deny"}"#), None);
        assert_eq!(p(r#"{"health_paths": ["/", "/ipfs/health"]}"#), None);
        assert_eq!(p(r#"{"platform_paths": ["/ipns/"]}"#), None);
        assert!(p(r#"{"health_paths": ["/ipfsx"], "platform_paths": ["/.well-known/"]}"#).is_some());
    }

    #[test]
    fn methods_and_queries() {
        let path = format!("/ipfs/{CID}/a.txt?format=raw;x");
        assert!(is_native_read("GET", path.as_bytes()));
        assert!(is_native_read("HEAD", path.as_bytes()));
        assert!(!is_native_read("POST", path.as_bytes()));
        assert!(!is_native_read("OPTIONS", path.as_bytes()));
    }
}
