//! Query and option reading of `/api/v0/add` (`add::query`, `add::checks`,
//! `add::cidbase`): a `:path` line, then a Content-Type line. Properties:
//! - the query forwarded to the cluster is a fixed point: read again, it is
//!   forwarded unchanged, with the same wrap and progress reading;
//! - the decision does not change when unreserved characters of the query
//!   are percent-encoded (Go's `url.ParseQuery` reads both alike): the same
//!   reply, the same detour to Kubo, or the same forwarded options once
//!   decoded;
//! - `parse_int` agrees with a plain decimal parse where Go's base-0 rules
//!   and decimal agree.
#![no_main]

use edge_fuzz::{reencode, Rng};
use edge_logic::add::checks;
use edge_logic::add::cidbase::CidBase;
use edge_logic::add::query::{parse_bool, parse_int, route, Destination};
use edge_logic::gourl;
use libfuzzer_sys::fuzz_target;

/// The forwarded query's pairs, decoded.
fn decoded_pairs(path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let q = path.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| gourl::unescape(s.as_bytes(), true).unwrap_or_else(|| s.as_bytes().to_vec());
            (d(k), d(v))
        })
        .collect()
}

fn decimal(v: &str) -> bool {
    let d = v.strip_prefix(['+', '-']).unwrap_or(v);
    d == "0" || (!d.is_empty() && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
}

fuzz_target!(init: edge_fuzz::init("add_query"), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, ct) = text.split_once('\n').unwrap_or((text, "multipart/form-data; boundary=b"));
    let mut rng = Rng::from_input(data);

    for refuse in [true, false] {
        let first = route(path, ct, refuse);
        if let Destination::Cluster { path: forwarded, request } = &first {
            match route(forwarded, ct, refuse) {
                Destination::Cluster { path: again, request: r2 } => {
                    assert_eq!(&again, forwarded, "the forwarded query changes when read again");
                    assert_eq!((r2.wrap, r2.progress), (request.wrap, request.progress));
                }
                other => panic!("{forwarded:?} read again: {other:?}"),
            }
        }
        if let Some((p, q)) = path.split_once('?') {
            let encoded = format!("{p}?{}", String::from_utf8(reencode(q.as_bytes(), &mut rng)).expect("ASCII escapes"));
            let second = route(&encoded, ct, refuse);
            match (&first, &second) {
                (Destination::Cluster { path: a, request: ra }, Destination::Cluster { path: b, request: rb }) => {
                    assert_eq!(ra, rb, "{path:?} vs {encoded:?}");
                    assert_eq!(decoded_pairs(a), decoded_pairs(b), "{path:?} vs {encoded:?}");
                }
                (a, b) => assert_eq!(a, b, "{path:?} vs {encoded:?}"),
            }
        }
    }

    // Each value on its own, through the option readers.
    let q = path.split_once('?').map_or("", |(_, q)| q);
    for v in q.split(['&', '=']).chain([path, ct]) {
        let v = gourl::unescape(v.as_bytes(), true).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|| v.to_string());
        if decimal(&v) {
            assert_eq!(parse_int(&v), v.parse::<i32>().ok(), "{v:?}");
        }
        let _ = parse_bool(&v);
        let _ = checks::chunker(&v);
        let _ = checks::hash_known(&v);
        if let Ok(b) = CidBase::by_name(&v) {
            let _ = b.encode("QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM");
        }
        let _ = CidBase::default().encode(&v);
    }
});
