//! Every `/api/v0/add` a client can send gets, through the cluster and the filter, the answer
//! Kubo gives (add-compat.md): the real Kubo and the real ipfs-cluster (the versions of
//! values.env), the same bytes to peer 0's Kubo directly and to the cluster proxy through the
//! edge, compared field by field. The edge's router must let anyone add
//! ([`crate::stack::ADD_ROUTER_CONFIG`]), so the same bytes go to both.

use super::{both, cid_of, kubo, tail, Edge};
use crate::http::Response;
use crate::upload::{body, content, content_type, Entry, BOUNDARY};

struct Case {
    name: &'static str,
    method: &'static str,
    query: &'static str,
    body: Vec<u8>,
}

fn post(name: &'static str, query: &'static str, entries: &[Entry]) -> Case {
    Case { name, method: "POST", query, body: body(entries) }
}

fn cases() -> Vec<Case> {
    let small = content(1000, 1);
    let three_mib = content(3 * 1024 * 1024 + 17, 2);
    let chunk_exact = content(262144, 3);
    let mut broken_first = format!("--{BOUNDARY}\r\nbroken\r\n\r\nhello\r\n").into_bytes();
    broken_first.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let mut broken_second = body(&[Entry::File("a.txt", b"hello")]);
    let end = format!("--{BOUNDARY}--\r\n");
    broken_second.truncate(broken_second.len() - end.len());
    broken_second.extend_from_slice(format!("--{BOUNDARY}\r\nbroken\r\n\r\nx\r\n{end}").as_bytes());
    let empty_multipart = format!("--{BOUNDARY}--\r\n").into_bytes();
    let nested = [
        Entry::Dir("d"),
        Entry::File("d/a.txt", b"alpha"),
        Entry::Dir("d/sub"),
        Entry::File("d/sub/b.txt", b"beta"),
        Entry::File("d/sub/c <&>.txt", b"gamma"),
        Entry::Dir("d/empty"),
    ];
    vec![
        post("named file", "", &[Entry::File("hello.txt", &small)]),
        post("unnamed file (row 1)", "", &[Entry::File("", &small)]),
        post("unnamed file wrapped (row 2)", "?wrap-with-directory=true", &[Entry::File("", &small)]),
        post("named file wrapped", "?w=1", &[Entry::File("hello.txt", &small)]),
        post("nested directories", "", &nested),
        post("nested directories wrapped", "?wrap-with-directory=true", &nested),
        post("empty file (row 4: Size \"0\" with raw leaves)", "?cid-version=1", &[Entry::File("empty", b"")]),
        post("empty file CIDv0", "", &[Entry::File("empty", b"")]),
        post("cid-version=1", "?cid-version=1", &[Entry::File("f", &three_mib)]),
        post("raw-leaves", "?raw-leaves=true", &[Entry::File("f", &three_mib)]),
        post("cid-base=base32 (row 6)", "?cid-base=base32", &[Entry::File("", &small)]),
        post("cid-base=base36 on a directory", "?cid-base=base36", &nested),
        post("progress on a multi-MiB file (row 3)", "?progress=true", &[Entry::File("big.bin", &three_mib)]),
        post("progress, unnamed", "?progress=true", &[Entry::File("", &three_mib)]),
        post("progress in a directory (row 3)", "?progress=true", &[Entry::Dir("d"), Entry::File("d/big.bin", &three_mib), Entry::File("d/x", &chunk_exact)]),
        post("progress, empty file", "?p=true", &[Entry::File("e", b"")]),
        post("aliases (row 9)", "?w&p=1&t=true&s=size-1024&pin=0", &[Entry::File("a.bin", &three_mib[..300_000])]),
        post("booleans Kubo's way (row 8)", "?progress=T&wrap-with-directory=1&pin=0&trickle=False", &[Entry::File("a", &small)]),
        post("stream-channels=false (row 12)", "?stream-channels=false", &[Entry::File("a", &small)]),
        post("two top-level files", "", &[Entry::File("a", &small), Entry::File("b", &three_mib[..5000])]),
        post("error before the first event: chunker (row 10)", "?chunker=size-0", &[Entry::File("a", &small)]),
        post("error before the first event: bad chunker name", "?chunker=foo", &[Entry::File("a", &small)]),
        post("error before the first event: cid-version=2", "?cid-version=2", &[Entry::File("a", &small)]),
        post("error before the first event: unknown hash", "?hash=nope", &[Entry::File("a", &small)]),
        post("error before the first event: bad cid-base", "?cid-base=nope", &[Entry::File("a", &small)]),
        post("bad boolean", "?progress=maybe", &[Entry::File("a", &small)]),
        post("option given twice", "?progress=1&progress=0", &[Entry::File("a", &small)]),
        Case { name: "error before the first event: broken first part", method: "POST", query: "", body: broken_first },
        Case { name: "error mid-stream: broken second part (row 11)", method: "POST", query: "", body: broken_second },
        Case { name: "no file at all", method: "POST", query: "", body: empty_multipart },
        Case { name: "GET (row 14)", method: "GET", query: "", body: Vec::new() },
        Case { name: "PUT (row 14)", method: "PUT", query: "", body: body(&[Entry::File("a", &small)]) },
        Case { name: "DELETE", method: "DELETE", query: "", body: Vec::new() },
    ]
}

fn show(r: &Response) -> String {
    let s = r.semantic();
    if s.len() > 4000 { format!("{}...({} bytes)", &s[..4000], s.len()) } else { s }
}

/// Every case of add-compat.md: Kubo's answer and the edge's are the same in status, headers
/// (but `Date` and the framing), body and trailers.
pub fn answers_as_kubo(edge: &dyn Edge) {
    let mut failures = Vec::new();
    let all = cases();
    for case in &all {
        let ct = (case.method != "GET" && case.method != "DELETE").then(content_type);
        let req = edge.request(case.method, &format!("/api/v0/add{}", case.query), ct.as_deref(), &case.body);
        let kubo = crate::http::exchange(kubo(), &req).expect("Kubo answers");
        match crate::http::exchange(edge.port(crate::edge::Proto::Http11), &req) {
            Ok(edge) if kubo.semantic() == edge.semantic() => {}
            Ok(edge) => failures.push(format!("--- {}\n[kubo]\n{}\n[cluster+filter]\n{}", case.name, show(&kubo), show(&edge))),
            Err(e) => failures.push(format!("--- {}\n[kubo]\n{}\n[cluster+filter]\n{e}", case.name, show(&kubo))),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}\nedge log:\n{}", failures.len(), all.len(), failures.join("\n"), tail(&edge.log(), 60));
}

/// The same comparison without the filter must fail, or [`answers_as_kubo`] proves nothing:
/// the real cluster proxy differs where add-compat says.
pub fn the_unfixed_cluster_is_told_apart(edge: &dyn Edge) {
    let req = edge.request("POST", "/api/v0/add", Some(&content_type()), &body(&[Entry::File("", b"x")]));
    let kubo = crate::http::exchange(kubo(), &req).unwrap();
    let cluster = crate::http::exchange(crate::real::cluster().peers[0].ports.proxy, &req).unwrap();
    assert_ne!(kubo.semantic(), cluster.semantic());
    assert_eq!(kubo.semantic(), edge.exchange(&req).semantic());
}

/// `only-hash` adds are Kubo's own answer and pin nothing anywhere; a client cannot pick the
/// Kubo route for a normal add.
pub fn only_hash_is_kubos_answer_and_pins_nothing(edge: &dyn Edge) {
    let data = content(700_000, 9);
    let mut cids = Vec::new();
    for query in ["?only-hash=true", "?n=1", "?only-hash&progress=1", "?n=t&cid-version=1"] {
        let req = edge.request("POST", &format!("/api/v0/add{query}"), Some(&content_type()), &body(&[Entry::File("x.bin", &data)]));
        let (kubo, edge) = both(edge, &req);
        assert_eq!(kubo.semantic(), edge.semantic(), "{query}");
        assert_eq!(edge.status, 200, "{query}");
        cids.push(cid_of(&edge));
    }
    for cid in &cids {
        assert!(!crate::real::cluster_pins(cid), "only-hash reached the cluster: {cid} is in its pin set");
        assert!(!crate::real::kubo_pins(cid), "only-hash pinned {cid} in Kubo");
    }
    // The client's own mark is dropped: a normal add goes to the cluster and is pinned
    // cluster-wide.
    let unique = format!("normal add {} {}", std::process::id(), edge.host()).into_bytes();
    let upload = body(&[Entry::File("y", &unique)]);
    let mut req = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nx-ipfs-edge-backend: kubo\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        edge.host(),
        content_type(),
        upload.len()
    )
    .into_bytes();
    req.extend_from_slice(&upload);
    let r = edge.exchange(&req);
    assert_eq!(r.status, 200, "{}", r.semantic());
    let cid = cid_of(&r);
    assert!(crate::real::cluster_pins(&cid), "a normal add must go to the cluster and pin ({cid})");
}
