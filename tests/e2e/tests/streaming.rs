//! Streaming through the add filter: uploads are never held, events reach
//! the client while the upload is still going, an add longer than Envoy's
//! default route timeout completes, the upload limit (the real cluster
//! behind Envoy: `e2e::cases::streaming`, shared with tests/gateway), and a
//! 1 GiB upload arrives byte for byte (a digesting sink: the real cluster
//! cannot say what bytes it received), lines cut across chunks (a sink that
//! cuts them on purpose), the real cluster's answer broken by a tap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e::sink::{self, Answer};
use e2e::cases::streaming;
use e2e::real::RealStack;
use e2e::recorder::{Fault, Recorder};
use e2e::stack::envoy_in_front_of;
use e2e::upload::{body, content, content_type, Entry, BOUNDARY};
use sha2::{Digest, Sha256};

#[test]
fn progress_reaches_the_client_while_the_upload_is_still_going() {
    streaming::progress_reaches_the_client_while_the_upload_is_still_going(&RealStack::start(None));
}

#[test]
fn an_add_longer_than_the_default_route_timeout_completes() {
    streaming::an_add_longer_than_the_default_route_timeout_completes(&RealStack::start(None));
}

#[test]
fn uploads_over_the_limit_are_refused_and_reach_no_pin() {
    streaming::uploads_over_the_limit_are_refused_and_reach_no_pin(&RealStack::start(Some(r#"{"max_upload_bytes":100000}"#)));
}

#[test]
fn a_gib_upload_arrives_with_the_sha256_it_was_sent_with() {
    let sink = sink::spawn(Answer::Digest);
    let envoy = envoy_in_front_of(sink.port(), sink.port(), "{}", true);
    const GIB: usize = 1 << 30;
    let head_part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail_part = format!("\r\n--{BOUNDARY}--\r\n");
    let total = head_part.len() + GIB + tail_part.len();
    let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
    let head = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {}\r\nContent-Length: {total}\r\n\r\n",
        content_type()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut sent = Sha256::new();
    let mut send = |b: &[u8]| {
        sent.update(b);
        s.write_all(b).unwrap();
    };
    send(head_part.as_bytes());
    // 1 MiB blocks, each different (its index in the first bytes), and some
    // that look like boundaries to the filter's multipart reader.
    let mut block = content(1 << 20, 5);
    for i in 0..1024usize {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        if i % 97 == 0 {
            let fake = format!("\r\n--{BOUNDARY}X\r\n");
            block[100..100 + fake.len()].copy_from_slice(fake.as_bytes());
        }
        send(&block);
    }
    send(tail_part.as_bytes());
    let digest: String = sent.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let r = e2e::http::parse(&raw).expect("response");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(r.header("x-sink-bytes"), Some(total.to_string().as_str()));
    assert_eq!(r.header("x-sink-sha256"), Some(digest.as_str()), "the upload changed on the way");
}

#[test]
fn events_cut_across_chunks_are_rewritten_whole_and_nothing_is_lost() {
    let cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";
    // Two unnamed-file events (the filter names them), a line it does not
    // understand, and an unterminated tail that is no event before the
    // error trailer (it must pass at once: nothing could be added to the
    // body once the trailers come).
    let lines: Vec<Vec<u8>> = vec![
        format!("{{\"Name\":\"\",\"Hash\":\"{cid}\",\"Size\":\"6\"}}\n").into_bytes(),
        b"not an event\n".to_vec(),
        format!("{{\"Name\":\"\",\"Hash\":\"{cid}\",\"Size\":\"6\"}}\n").into_bytes(),
        b"tail, no event".to_vec(),
    ];
    let sink = sink::spawn(Answer::CutEvents(std::sync::Arc::new(lines), Some("boom")));
    let envoy = envoy_in_front_of(sink.port(), sink.port(), "{}", true);
    let req = e2e::http::request("POST", "/api/v0/add", Some(&content_type()), &body(&[Entry::File("", b"x"), Entry::File("", b"y")]));
    let r = e2e::http::exchange(envoy.port, &req).unwrap();
    let named = format!("{{\"Name\":\"{cid}\",\"Hash\":\"{cid}\",\"Size\":\"6\"}}\n");
    assert_eq!(String::from_utf8_lossy(&r.body), format!("{named}not an event\n{named}tail, no event"));
    assert_eq!(r.trailers, vec![("x-stream-error".to_string(), "boom".to_string())]);
}

#[test]
fn the_real_clusters_answer_cut_anywhere_is_rewritten_whole() {
    // The real cluster's bytes, reaching Envoy in pieces of 1 to 300 bytes:
    // every event line is cut somewhere, and the answer must still be
    // Kubo's, byte for byte.
    let cluster = e2e::real::cluster();
    let p = &cluster.peers[0];
    let tap = Recorder::faulty_tap("proxy", p.proxy(), Fault::Dribble);
    let envoy = envoy_in_front_of(tap.port(), p.ports.kubo_rpc, "{}", true);
    let big = content(1024 * 1024 + 5, 21);
    let nested = [Entry::Dir("d"), Entry::File("d/a", b"alpha"), Entry::File("d/sub/b <&>", b"beta"), Entry::File("d/big", &big)];
    let unnamed = [Entry::File("", &big)];
    for (query, entries) in [("?progress=true", &unnamed[..]), ("?progress=true&wrap-with-directory=true", &nested[..]), ("?cid-base=base32", &nested[..])] {
        let req = e2e::http::request("POST", &format!("/api/v0/add{query}"), Some(&content_type()), &body(entries));
        let kubo = e2e::http::exchange(p.ports.kubo_rpc, &req).unwrap();
        let edge = e2e::http::exchange(envoy.port, &req).unwrap();
        assert!(kubo.lines().len() > 3, "{query}: {}", kubo.semantic());
        assert_eq!(kubo.semantic(), edge.semantic(), "{query}\n{}", envoy.log());
    }
    assert_eq!(tap.seen().len(), 3);
}

#[test]
fn a_cluster_answer_cut_short_never_looks_complete() {
    // The cluster proxy dies mid-answer (its bytes stop, the connection
    // closes): the client must see a broken response, not a shorter
    // complete one that would pass for a finished add.
    let cluster = e2e::real::cluster();
    let p = &cluster.peers[0];
    let tap = Recorder::faulty_tap("proxy", p.proxy(), Fault::CutAfter(700));
    let envoy = envoy_in_front_of(tap.port(), p.ports.kubo_rpc, "{}", true);
    let req = e2e::http::request("POST", "/api/v0/add?progress=true", Some(&content_type()), &body(&[Entry::File("cut.bin", &content(2 * 1024 * 1024, 22))]));
    let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&req).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""Name":"cut.bin","Bytes":"#), "the answer's start passes: {text}");
    assert!(e2e::http::parse(&raw).is_none(), "a cut answer came out complete:\n{text}");
    assert!(!text.contains("\"Hash\""), "{text}");
}
