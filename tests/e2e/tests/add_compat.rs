//! Every `/api/v0/add` a client can send gets, through the cluster and the
//! filter, the answer Kubo gives (add-compat.md): the real Kubo and the real
//! ipfs-cluster (the versions of values.env), the same bytes to peer 0's
//! Kubo directly and to the cluster proxy through Envoy, compared field by
//! field.

use e2e::http::{request, Response};
use e2e::real::RealStack;
use e2e::upload::{body, content, content_type, Entry};

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
    let mut broken_first = format!("--{}\r\nbroken\r\n\r\nhello\r\n", e2e::upload::BOUNDARY).into_bytes();
    broken_first.extend_from_slice(format!("--{}--\r\n", e2e::upload::BOUNDARY).as_bytes());
    let mut broken_second = body(&[Entry::File("a.txt", b"hello")]);
    let end = format!("--{}--\r\n", e2e::upload::BOUNDARY);
    broken_second.truncate(broken_second.len() - end.len());
    broken_second.extend_from_slice(format!("--{}\r\nbroken\r\n\r\nx\r\n{end}", e2e::upload::BOUNDARY).as_bytes());
    let empty_multipart = format!("--{}--\r\n", e2e::upload::BOUNDARY).into_bytes();
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
        post("cid-base=base32 (row 6)", "?cid-base=base32", &[Entry::File("", &small), ]),
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

#[test]
fn add_through_the_cluster_answers_as_kubo() {
    let stack = RealStack::start(None);
    let mut failures = Vec::new();
    let all = cases();
    for case in &all {
        let ct = (case.method != "GET" && case.method != "DELETE").then(content_type);
        let req = request(case.method, &format!("/api/v0/add{}", case.query), ct.as_deref(), &case.body);
        let (kubo, edge) = stack.both(&req);
        if kubo.semantic() != edge.semantic() {
            failures.push(format!("--- {}\n[kubo]\n{}\n[cluster+filter]\n{}", case.name, show(&kubo), show(&edge)));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}\nenvoy log:\n{}", failures.len(), all.len(), failures.join("\n"), stack.envoy.log());
}

#[test]
fn the_unfixed_cluster_is_told_apart() {
    // The same comparison without the filter must fail, or the test above
    // proves nothing: the real cluster proxy differs where add-compat says.
    let stack = RealStack::start(None);
    let req = request("POST", "/api/v0/add", Some(&content_type()), &body(&[Entry::File("", b"x")]));
    let kubo = e2e::http::exchange(stack.kubo(), &req).unwrap();
    let cluster = e2e::http::exchange(stack.proxy(), &req).unwrap();
    assert_ne!(kubo.semantic(), cluster.semantic());
    let edge = e2e::http::exchange(stack.envoy.port, &req).unwrap();
    assert_eq!(kubo.semantic(), edge.semantic());
}

#[test]
fn only_hash_is_kubos_answer_and_pins_nothing() {
    let stack = RealStack::start(None);
    let data = content(700_000, 9);
    let mut cids = Vec::new();
    for query in ["?only-hash=true", "?n=1", "?only-hash&progress=1", "?n=t&cid-version=1"] {
        let req = request("POST", &format!("/api/v0/add{query}"), Some(&content_type()), &body(&[Entry::File("x.bin", &data)]));
        let (kubo, edge) = stack.both(&req);
        assert_eq!(kubo.semantic(), edge.semantic(), "{query}");
        assert_eq!(edge.status, 200, "{query}");
        let last = edge.lines().last().cloned().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("{query}: {e}: {last}"));
        cids.push(v["Hash"].as_str().expect("a Hash").to_string());
    }
    for cid in &cids {
        assert!(!stack.cluster_pins(cid), "only-hash reached the cluster: {cid} is in its pin set");
        assert!(!stack.kubo_pins(cid), "only-hash pinned {cid} in Kubo");
    }
    // And a client cannot pick the Kubo route for a normal add: it goes to
    // the cluster and is pinned cluster-wide.
    let unique = format!("normal add {}", std::process::id()).into_bytes();
    let upload = body(&[Entry::File("y", &unique)]);
    let req = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-ipfs-edge-backend: kubo\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        content_type(),
        upload.len()
    );
    let mut req = req.into_bytes();
    req.extend_from_slice(&upload);
    let r = e2e::http::exchange(stack.envoy.port, &req).unwrap();
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(r.lines().last().unwrap()).unwrap();
    let cid = v["Hash"].as_str().unwrap();
    assert!(stack.cluster_pins(cid), "a normal add must go to the cluster and pin ({cid})");
}

#[test]
fn a_bad_configuration_is_refused_naming_the_key() {
    for (json, key) in [(r#"{"max_line":100}"#, "max_line"), (r#"{"server":7}"#, "server"), (r#"{"max_line_bytes":"big"}"#, "max_line_bytes")] {
        let patches = e2e::stack::patches(1, 1, json, true);
        match e2e::envoy::Envoy::try_start("manifests/envoy/envoy.yaml", &patches) {
            Ok(_) => panic!("{json} was accepted"),
            Err(log) => {
                let line = log.lines().find(|l| l.contains("add_response configuration")).unwrap_or_else(|| panic!("no log line for {json}:\n{log}"));
                assert!(line.contains(key), "{line}");
            }
        }
    }
}
