//! Streaming through the edge with the real cluster behind it: uploads are never held,
//! events reach the client while the upload is still going, an add that lasts longer than
//! Envoy's default route timeout completes, and uploads over the add filter's limit are
//! refused as a client sees it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{cid_of, kubo, tail, Edge};
use crate::edge::Proto;
use crate::upload::{body, content, content_type, Entry};

/// Reads from `s` until `needle` shows up in what was read, or the deadline.
pub fn read_until(s: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        if seen.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return seen.windows(needle.len()).any(|w| w == needle),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    false
}

fn connect(edge: &dyn Edge) -> TcpStream {
    TcpStream::connect(("127.0.0.1", edge.port(Proto::Http11))).expect("connect to the edge")
}

fn head(edge: &dyn Edge, target: &str, length: usize, close: bool) -> String {
    let close = if close { "Connection: close\r\n" } else { "" };
    format!("POST {target} HTTP/1.1\r\nHost: {}\r\n{close}Content-Type: {}\r\nContent-Length: {length}\r\n\r\n", edge.host(), content_type())
}

pub fn progress_reaches_the_client_while_the_upload_is_still_going(edge: &dyn Edge) {
    let data = content(4 * 1024 * 1024, 11);
    let body = body(&[Entry::File("live.bin", &data)]);
    let mut s = connect(edge);
    s.write_all(head(edge, "/api/v0/add?progress=true", body.len(), true).as_bytes()).unwrap();
    // A quarter of the upload; then the first progress event (256 KiB read), already
    // carrying Kubo's name, must arrive before the rest is sent.
    let quarter = body.len() / 4;
    s.write_all(&body[..quarter]).unwrap();
    let mut seen = Vec::new();
    let live = read_until(&mut s, &mut seen, br#"{"Name":"live.bin","Bytes":262144}"#, Duration::from_secs(20));
    assert!(live, "no progress event while the upload was under way; got:\n{}", String::from_utf8_lossy(&seen));
    s.write_all(&body[quarter..]).unwrap();
    assert!(read_until(&mut s, &mut seen, b"\"Hash\"", Duration::from_secs(60)), "{}", String::from_utf8_lossy(&seen));
    let mut rest = Vec::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.read_to_end(&mut rest);
    seen.extend_from_slice(&rest);
    let r = crate::http::parse(&seen).expect("complete response");
    let last = r.lines().last().cloned().unwrap_or_default();
    assert!(last.starts_with(r#"{"Name":"live.bin","Hash":"Qm"#), "{last}");
}

/// Envoy's route timeout when a route sets none: 15 s (Envoy Gateway keeps it).
pub const ENVOY_DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// An add whose upload lasts longer than Envoy's default route timeout (a client on a slow
/// link, throttled here) completes with Kubo's answer. Envoy starts a route's timeout only
/// once the whole request is in (measured: a 5 s throttled add passes a 2 s route timeout),
/// so what this guards is every timer that runs while a request is still arriving: a limit
/// on receiving the request (Envoy's `request_timeout`, Envoy Gateway's
/// `requestReceivedTimeout`: measured, one of 10 s cuts this add), a stream duration limit,
/// an idle timeout shorter than the client's pauses. Without `progress`, so the answer begins
/// only once the upload is in (an answer begun disarms `request_timeout`). The add routes'
/// own `timeout: 0s` is held by the configuration comparison of tests/gateway.
pub fn an_add_longer_than_the_default_route_timeout_completes(edge: &dyn Edge) {
    let data = content(1024 * 1024, 12);
    let upload = body(&[Entry::File("slow.bin", &data)]);
    let target = "/api/v0/add";
    let kubo = crate::http::exchange(kubo(), &edge.request("POST", target, Some(&content_type()), &upload)).expect("Kubo answers");
    let mut s = connect(edge);
    s.write_all(head(edge, target, upload.len(), true).as_bytes()).unwrap();
    let start = Instant::now();
    // 20 pieces, one every 850 ms: 17 s.
    let pieces = 20;
    for piece in upload.chunks(upload.len().div_ceil(pieces)) {
        s.write_all(piece).unwrap_or_else(|e| panic!("upload cut after {:?}: {e}\n{}", start.elapsed(), tail(&edge.log(), 40)));
        std::thread::sleep(Duration::from_millis(850));
    }
    let mut raw = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s.read_to_end(&mut raw);
    let took = start.elapsed();
    let r = crate::http::parse(&raw).unwrap_or_else(|| panic!("after {took:?}, no complete answer: {:?}\n{}", String::from_utf8_lossy(&raw), tail(&edge.log(), 40)));
    assert!(took > ENVOY_DEFAULT_ROUTE_TIMEOUT, "the add took only {took:?}");
    assert_eq!(kubo.semantic(), r.semantic(), "after {took:?}");
}

/// Uploads over the add filter's `max_upload_bytes` are refused with Kubo's error shape and
/// `413`, declared (on the headers, before any body byte) or chunked (when the count passes
/// the limit), and reach no pin; adds under it work as before.
pub fn uploads_over_the_limit_are_refused_and_reach_no_pin(edge: &dyn Edge) {
    let limit = usize::try_from(edge.max_upload_bytes()).unwrap();
    assert!(limit > 0, "the edge under test has no upload limit");
    let big_data = content(3 * limit, 3);
    let big = body(&[Entry::File("big.bin", &big_data)]);
    let limit_text = format!("limit of {limit} bytes");
    // Declared too large: refused on the headers, before any body byte is read (a client
    // still sending would see its connection closed).
    let mut s = connect(edge);
    s.write_all(head(edge, "/api/v0/add", big.len(), false).as_bytes()).unwrap();
    let mut seen = Vec::new();
    assert!(read_until(&mut s, &mut seen, b"bytes\"", Duration::from_secs(20)), "{}\n{}", String::from_utf8_lossy(&seen), tail(&edge.log(), 40));
    let r = crate::http::parse(&seen).expect("complete answer");
    assert_eq!(r.status, 413, "{}", r.semantic());
    assert!(String::from_utf8_lossy(&r.body).contains(&limit_text), "{}", r.semantic());
    // Chunked, no length: cut when it passes the limit.
    let mut req = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        edge.host(),
        content_type()
    )
    .into_bytes();
    // Up to just past the limit, then wait for the answer.
    for piece in big[..limit + limit / 5].chunks(16 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    let mut s = connect(edge);
    // Written beside the reading: the edge answers and closes before all of it is in.
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&req);
    });
    let mut seen = Vec::new();
    assert!(read_until(&mut s, &mut seen, b"bytes\"", Duration::from_secs(20)), "{}\n{}", String::from_utf8_lossy(&seen), tail(&edge.log(), 40));
    let r = crate::http::parse(&seen).expect("complete answer");
    assert_eq!(r.status, 413, "{}", r.semantic());
    drop(s);
    let _ = writer.join();
    // Under the limit, adds work as before.
    let small = body(&[Entry::File("small.bin", &content(limit / 2, 4))]);
    let r = edge.exchange(&edge.request("POST", "/api/v0/add", Some(&content_type()), &small));
    assert_eq!(r.status, 200, "{}", r.semantic());
    assert!(crate::real::cluster_pins(&cid_of(&r)), "the small add must pin");
    // The refused one's CID, from Kubo without storing it: never pinned.
    let hashed = crate::http::exchange(kubo(), &edge.request("POST", "/api/v0/add?only-hash=true", Some(&content_type()), &big)).unwrap();
    let big_cid = cid_of(&hashed);
    assert!(!crate::real::cluster_pins(&big_cid) && !crate::real::kubo_pins(&big_cid), "a refused upload was pinned ({big_cid})");
}
