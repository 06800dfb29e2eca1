//! Wire-level tests of both stand-ins: exact bytes (Date masked) for the behaviours
//! UPSTREAM.md documents.

use standins::{Kind, Server, StandinState};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

fn start(kind: Kind) -> (SocketAddr, Arc<StandinState>) {
    Server::bind("127.0.0.1:0", kind, 0).unwrap().spawn()
}

fn part(name: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        name
    )
    .into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

fn dir_part(name: &str) -> Vec<u8> {
    format!("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n", name).into_bytes()
}

fn body(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut b: Vec<u8> = parts.concat();
    b.extend_from_slice(b"--B--\r\n");
    b
}

/// Reads one complete HTTP/1.1 response (Content-Length, chunked with trailers, or
/// until close) and reports whether the server then closed the connection.
fn read_response(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let mut fill = |buf: &mut Vec<u8>| -> bool {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(&mut buf) {
            return (buf, true);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let cl = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map(|v| v.trim().parse::<usize>().unwrap());
    let chunked = head.contains("Transfer-Encoding: chunked\r\n");
    if let Some(n) = cl {
        while buf.len() < head_end + n {
            if !fill(&mut buf) {
                break;
            }
        }
    } else if chunked {
        let mut pos = head_end;
        loop {
            // chunk header
            let line_end = loop {
                if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + i + 2;
                }
                if !fill(&mut buf) {
                    return (buf, true);
                }
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[pos..line_end - 2]).unwrap(), 16).unwrap();
            if size == 0 {
                // trailers until an empty line
                let mut p = line_end;
                loop {
                    let e = loop {
                        if let Some(i) = buf[p..].windows(2).position(|w| w == b"\r\n") {
                            break p + i + 2;
                        }
                        if !fill(&mut buf) {
                            return (buf, true);
                        }
                    };
                    if e - p == 2 {
                        break;
                    }
                    p = e;
                }
                break;
            }
            while buf.len() < line_end + size + 2 {
                if !fill(&mut buf) {
                    return (buf, true);
                }
            }
            pos = line_end + size + 2;
        }
    } else {
        while fill(&mut buf) {}
        return (buf, true);
    }
    // Did the server close? (a keep-alive connection stays open)
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let closed = matches!(s.read(&mut tmp), Ok(0));
    (buf, closed)
}

fn send(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        method,
        path,
        addr,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let (r, closed) = read_response(&mut s);
    (mask_date(&String::from_utf8_lossy(&r)), closed)
}

fn mask_date(s: &str) -> String {
    s.split('\n')
        .map(|l| if l.starts_with("Date: ") { "Date: <date>\r" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn pins(addr: SocketAddr) -> Vec<String> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET /__standin/pins HTTP/1.1\r\nHost: {}\r\n\r\n", addr).as_bytes()).unwrap();
    let (r, _) = read_response(&mut s);
    let r = String::from_utf8(r).unwrap();
    let json = &r[r.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(json).unwrap()
}

/// The NDJSON lines of a chunked body (chunk framing removed).
fn events(resp: &str) -> Vec<String> {
    resp.lines().filter(|l| l.starts_with('{') || l.starts_with('[')).map(|l| l.to_string()).collect()
}

fn kubo_head() -> String {
    format!("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nAccess-Control-Expose-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nContent-Type: application/json\r\nServer: kubo/{}\r\nTrailer: X-Stream-Error\r\nVary: Origin\r\nX-Chunked-Output: 1\r\nDate: <date>\r\nTransfer-Encoding: chunked\r\n\r\n", standins::kubo::KUBO_VERSION)
}
const CLUSTER_HEAD: &str = "HTTP/1.1 200 OK\r\nAccess-Control-Expose-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: application/json\r\nServer: ipfs-cluster/ipfsproxy/1.1.6\r\nTrailer: X-Stream-Error\r\nVary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\nX-Chunked-Output: 1\r\nDate: <date>\r\nTransfer-Encoding: chunked\r\n\r\n";

#[test]
fn single_named_file_exact_bytes() {
    let (k, ks) = start(Kind::Kubo);
    let (c, cs) = start(Kind::Cluster);
    let b = body(&[part("hello.txt", b"hello world")]);
    let (r, closed) = send(k, "POST", "/api/v0/add?progress=true", &b);
    assert_eq!(
        r,
        format!("{}20\r\n{{\"Name\":\"hello.txt\",\"Bytes\":11}}\n\r\n59\r\n{{\"Name\":\"hello.txt\",\"Hash\":\"Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD\",\"Size\":\"19\"}}\n\r\n0\r\n\r\n", kubo_head())
    );
    assert!(!closed, "Kubo keeps the connection when the body was read to the end");
    let (r, closed) = send(c, "POST", "/api/v0/add?progress=true", &b);
    assert_eq!(
        r,
        format!("{}17\r\n{{\"Name\":\"\",\"Bytes\":11}}\n\r\n59\r\n{{\"Name\":\"hello.txt\",\"Hash\":\"Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD\",\"Size\":\"19\"}}\n\r\n0\r\n\r\n", CLUSTER_HEAD)
    );
    assert!(closed, "cluster always sends Connection: close");
    assert_eq!(pins(k), vec!["Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"]);
    assert_eq!(pins(c), vec!["Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"]);
    let _ = (ks, cs);
}

#[test]
fn unnamed_file_and_wrap() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("", b"hello world")]);
    let hw = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD";
    let (r, _) = send(k, "POST", "/api/v0/add", &b);
    assert_eq!(events(&r), vec![format!("{{\"Name\":\"{hw}\",\"Hash\":\"{hw}\",\"Size\":\"19\"}}")]);
    let (r, _) = send(c, "POST", "/api/v0/add", &b);
    assert_eq!(events(&r), vec![format!("{{\"Name\":\"\",\"Hash\":\"{hw}\",\"Size\":\"19\"}}")]);
    // wrap: Kubo names the file by its CID, the cluster leaves it empty; wrapper "".
    let (rk, _) = send(k, "POST", "/api/v0/add?w=true", &b);
    let (rc, _) = send(c, "POST", "/api/v0/add?wrap-with-directory=true", &b);
    let ek = events(&rk);
    let ec = events(&rc);
    assert_eq!(ek.len(), 2);
    assert_eq!(ek[0], format!("{{\"Name\":\"{hw}\",\"Hash\":\"{hw}\",\"Size\":\"19\"}}"));
    assert_eq!(ec[0], format!("{{\"Name\":\"\",\"Hash\":\"{hw}\",\"Size\":\"19\"}}"));
    assert!(ek[1].starts_with("{\"Name\":\"\",\"Hash\":\"Qm"));
    assert_eq!(ek[1], ec[1], "same wrapper directory on both sides");
    // The cluster ignores the alias: `w=true` is a plain add there.
    let (r, _) = send(c, "POST", "/api/v0/add?w=true", &b);
    assert_eq!(events(&r).len(), 1);
}

#[test]
fn nested_directory_names_and_order() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[dir_part("d"), part("d%2Fa%20b.txt", b"A"), part("d/sub/c.txt", b"C"), dir_part("d/empty")]);
    let names = |r: &str| -> Vec<String> {
        events(r).iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Name"].as_str().unwrap().to_string()).collect()
    };
    let (rk, _) = send(k, "POST", "/api/v0/add?progress=true", &b);
    let (rc, _) = send(c, "POST", "/api/v0/add?progress=true", &b);
    assert_eq!(names(&rk), vec!["d/a b.txt", "d/a b.txt", "d/sub/c.txt", "d/sub/c.txt", "d/empty", "d/sub", "d"]);
    assert_eq!(names(&rc), vec!["a b.txt", "d/a b.txt", "sub/c.txt", "d/sub/c.txt", "d/empty", "d/sub", "d"]);
    // Same hashes and sizes for the "added" events.
    let added = |r: &str| events(r).into_iter().filter(|l| l.contains("\"Hash\"")).collect::<Vec<_>>();
    assert_eq!(added(&rk), added(&rc));
    assert!(added(&rk).last().unwrap().contains("\"Name\":\"d\""));
}

#[test]
fn method_not_allowed_and_cluster_get_put() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("a", b"x")]);
    let (r, closed) = send(k, "GET", "/api/v0/add", &b);
    assert_eq!(r, "HTTP/1.1 405 Method Not Allowed\r\nAllow: OPTIONS, POST\r\nContent-Type: text/plain; charset=utf-8\r\nVary: Origin\r\nX-Content-Type-Options: nosniff\r\nDate: <date>\r\nContent-Length: 25\r\n\r\n405 - Method Not Allowed\n");
    assert!(!closed);
    for m in ["GET", "PUT", "POST"] {
        let (r, _) = send(c, m, "/api/v0/add", &b);
        assert!(r.starts_with(CLUSTER_HEAD), "{m}: {r}");
    }
}

#[test]
fn only_hash() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("a.txt", b"hello")]);
    let ev = "{\"Name\":\"a.txt\",\"Hash\":\"QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX\",\"Size\":\"13\"}\n";
    let (r, _) = send(k, "POST", "/api/v0/add?n=1", &b);
    assert_eq!(r, format!("{}55\r\n{}\r\n0\r\n\r\n", kubo_head(), ev));
    assert!(pins(k).is_empty(), "only-hash stores and pins nothing");
    // Cluster: exact string "true" only; 1 is a normal add.
    let (r, _) = send(c, "POST", "/api/v0/add?only-hash=true", &b);
    let err = "{\"Message\":\"only-hash is not supported when adding to cluster\",\"Code\":0,\"Type\":\"error\"}";
    assert_eq!(
        r,
        format!("HTTP/1.1 500 Internal Server Error\r\nAccess-Control-Expose-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nContent-Type: application/json\r\nServer: ipfs-cluster/ipfsproxy/1.1.6\r\nVary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\nDate: <date>\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}{}\r\n0\r\n\r\n", err.len() + ev.len(), err, ev)
    );
    assert_eq!(pins(c), vec!["QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX"], "the cluster pins anyway");
    let (r, _) = send(c, "POST", "/api/v0/add?only-hash=1", &b);
    assert!(r.starts_with(CLUSTER_HEAD));
}

#[test]
fn stream_channels_false() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("a.txt", b"hello")]);
    let ev = "{\"Name\":\"a.txt\",\"Hash\":\"QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX\",\"Size\":\"13\"}";
    let (r, _) = send(k, "POST", "/api/v0/add?stream-channels=false", &b);
    assert_eq!(r, format!("{}55\r\n{}\n\r\n0\r\n\r\n", kubo_head(), ev));
    let (r, _) = send(c, "POST", "/api/v0/add?stream-channels=false", &b);
    assert_eq!(
        r,
        format!("HTTP/1.1 200 OK\r\nAccess-Control-Expose-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: application/json\r\nServer: ipfs-cluster/ipfsproxy/1.1.6\r\nVary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\nDate: <date>\r\nContent-Length: {}\r\n\r\n[{}]\n", ev.len() + 3, ev)
    );
    let (r, _) = send(c, "POST", "/api/v0/add?stream-channels=false&chunker=foo", &b);
    assert!(r.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    assert!(r.ends_with("\r\n\r\n{\"code\":500,\"message\":\"unrecognized chunker option: foo\"}\n"), "{r}");
}

#[test]
fn identical_errors_before_first_event() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("a.txt", b"hello")]);
    for (q, msg) in [
        ("chunker=foo", "unrecognized chunker option: foo"),
        ("chunker=size-0", "chunker size must be greater than 0"),
        ("chunker=size-abc", "strconv.Atoi: parsing \\\"abc\\\": invalid syntax"),
        ("chunker=size-1-2", "incorrect chunker string format (expected size-{size})"),
        ("chunker=size-3000000", "chunker parameters may not exceed the maximum chunk size of 2096896"),
    ] {
        let (r, _) = send(k, "POST", &format!("/api/v0/add?{q}"), &b);
        let json = format!("{{\"Message\":\"{msg}\",\"Code\":0,\"Type\":\"error\"}}\n");
        assert_eq!(
            r,
            format!("HTTP/1.1 500 Internal Server Error\r\nAccess-Control-Allow-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nAccess-Control-Expose-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\nContent-Type: application/json\r\nServer: kubo/{}\r\nTrailer: X-Stream-Error\r\nVary: Origin\r\nDate: <date>\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n", standins::kubo::KUBO_VERSION, json.len(), json)
        );
        let (r, _) = send(c, "POST", &format!("/api/v0/add?{q}"), &b);
        assert_eq!(r, format!("{}0\r\nX-Stream-Error: {}\r\n\r\n", CLUSTER_HEAD, msg.replace("\\\"", "\"")));
    }
    // A first part whose header has no colon.
    let bad = b"--B\r\nbroken\r\n\r\nx\r\n--B--\r\n";
    let (r, _) = send(k, "POST", "/api/v0/add", bad);
    assert!(r.contains("{\"Message\":\"malformed MIME header: missing colon: \\\"broken\\\"\",\"Code\":0,\"Type\":\"error\"}\n"), "{r}");
    let (r, _) = send(c, "POST", "/api/v0/add", bad);
    assert_eq!(r, format!("{}0\r\nX-Stream-Error: malformed MIME header: missing colon: \"broken\"\r\n\r\n", CLUSTER_HEAD));
}

#[test]
fn identical_errors_mid_stream() {
    let (k, ks) = start(Kind::Kubo);
    let (c, cs) = start(Kind::Cluster);
    let ev = "{\"Name\":\"a.txt\",\"Hash\":\"QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX\",\"Size\":\"13\"}\n";
    let mut broken = part("a.txt", b"hello");
    broken.extend_from_slice(b"--B\r\nbroken\r\n\r\nx\r\n--B--\r\n");
    let mut truncated = part("a.txt", b"hello");
    truncated.truncate(truncated.len() - 2);
    for (b, msg) in [(broken, "malformed MIME header: missing colon: \"broken\""), (truncated, "multipart: NextPart: EOF")] {
        let (r, _) = send(k, "POST", "/api/v0/add", &b);
        assert_eq!(r, format!("{}55\r\n{}\r\n0\r\nX-Stream-Error: {}\r\n\r\n", kubo_head(), ev, msg));
        let (r, _) = send(c, "POST", "/api/v0/add", &b);
        assert_eq!(r, format!("{}55\r\n{}\r\n0\r\nX-Stream-Error: {}\r\n\r\n", CLUSTER_HEAD, ev, msg));
    }
    // Kubo pinned the file it finished; the cluster never reached Finalize.
    assert_eq!(ks.pins.lock().unwrap().len(), 2);
    assert!(cs.pins.lock().unwrap().is_empty());
}

#[test]
fn options_that_differ() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("e", b"")]);
    // Raw empty leaf: Size "0" on Kubo, omitted by the cluster.
    let (r, _) = send(k, "POST", "/api/v0/add?cid-version=1", &b);
    assert_eq!(events(&r), vec!["{\"Name\":\"e\",\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\",\"Size\":\"0\"}"]);
    let (r, _) = send(c, "POST", "/api/v0/add?cid-version=1", &b);
    assert_eq!(events(&r), vec!["{\"Name\":\"e\",\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"}"]);
    // cid-base upgrades CIDv0 on Kubo, ignored by the cluster.
    let (r, _) = send(k, "POST", "/api/v0/add?cid-base=base32", &b);
    assert!(events(&r)[0].contains("\"Hash\":\"bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y\""));
    let (r, _) = send(c, "POST", "/api/v0/add?cid-base=base32", &b);
    assert!(events(&r)[0].contains("\"Hash\":\"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH\""));
    // Kubo's bool parsing: bad value → 400 text/plain.
    let (r, _) = send(k, "POST", "/api/v0/add?p=yes", &b);
    assert_eq!(r, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nVary: Origin\r\nX-Content-Type-Options: nosniff\r\nDate: <date>\r\nContent-Length: 70\r\n\r\ncould not convert value \"yes\" to type \"bool\" (for option \"-progress\")\n");
    let (r, _) = send(c, "POST", "/api/v0/add?progress=yes", &b);
    assert!(r.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    assert!(r.ends_with("\r\n\r\n{\"Message\":\"error parsing options:parameter progress invalid\",\"Code\":0,\"Type\":\"error\"}"));
    // cid-version=2: different texts.
    let b2 = body(&[part("a", b"x")]);
    let (r, _) = send(k, "POST", "/api/v0/add?cid-version=2", &b2);
    assert!(r.contains("{\"Message\":\"unknown CID version: 2\""));
    let (r, _) = send(c, "POST", "/api/v0/add?cid-version=2", &b2);
    assert!(r.ends_with("X-Stream-Error: bad CID Version: unknown CID version: 2\r\n\r\n"));
}

#[test]
fn several_top_level_files() {
    let (k, ks) = start(Kind::Kubo);
    let (c, cs) = start(Kind::Cluster);
    let b = body(&[part("a", b"1"), part("b", b"2")]);
    let (rk, _) = send(k, "POST", "/api/v0/add", &b);
    let (rc, _) = send(c, "POST", "/api/v0/add", &b);
    assert_eq!(events(&rk), events(&rc));
    assert_eq!(ks.pins.lock().unwrap().len(), 2, "Kubo pins every top-level root");
    let cp = cs.pins.lock().unwrap().clone();
    assert_eq!(cp.len(), 1, "the cluster pins only the last root");
    assert!(events(&rc)[1].contains(&cp[0]));
}

#[test]
fn large_upload_progress_and_connection_close() {
    let (k, _) = start(Kind::Kubo);
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 7) as u8).collect();
    let b = body(&[part("big.bin", &data)]);
    let (r, closed) = send(k, "POST", "/api/v0/add?progress=true", &b);
    let ev = events(&r);
    assert_eq!(ev[..3], ["{\"Name\":\"big.bin\",\"Bytes\":262144}", "{\"Name\":\"big.bin\",\"Bytes\":524288}", "{\"Name\":\"big.bin\",\"Bytes\":600000}"]);
    assert!(ev[3].ends_with("\"Size\":\"600194\"}"));
    // The first progress event is written while most of the body is unread.
    assert!(r.contains("\r\nConnection: close\r\n"));
    assert!(closed);
}

#[test]
fn keep_alive_and_zero_entries() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    // Two requests on one Kubo connection.
    let mut s = TcpStream::connect(k).unwrap();
    let b = body(&[part("a", b"x")]);
    for _ in 0..2 {
        let head = format!("POST /api/v0/add HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n", b.len());
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&b).unwrap();
        let (r, closed) = read_response(&mut s);
        assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.1 200 OK"));
        assert!(!closed);
    }
    // No entries: Kubo 500, the cluster drops the connection (Go handler panic).
    let (r, _) = send(k, "POST", "/api/v0/add", b"--B--\r\n");
    assert!(r.contains("{\"Message\":\"expected a file argument\",\"Code\":0,\"Type\":\"error\"}"));
    let (r, closed) = send(c, "POST", "/api/v0/add", b"--B--\r\n");
    assert_eq!(r, "");
    assert!(closed);
}

/// Vectors from Kubo's own test suite (test/sharness/t0040-add-and-cat.sh at HEAD).
#[test]
fn kubo_sharness_vectors() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let planets = body(&[
        dir_part("planets"),
        part("planets%2Fmars.txt", b"Hello Mars!\n"),
        part("planets%2Fvenus.txt", b"Hello Venus!\n"),
    ]);
    for (q, planets_cid, mars, venus) in [
        ("", "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY", "QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN", "QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4"),
        ("raw-leaves=true", "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT", "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4", "bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca"),
        ("cid-version=1", "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi", "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4", "bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca"),
        ("cid-version=1&raw-leaves=false", "bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y", "bafybeiawta2ntdmsy24aro35w3homzl4ak7svr3si7l7gesvq4erglyye4", "bafybeicvkvhs2fr75ynebtdjqpgm4g2fc63abqbmysupwpmcjl4gx7mzrm"),
    ] {
        for addr in [k, c] {
            let (r, _) = send(addr, "POST", &format!("/api/v0/add?{q}"), &planets);
            let ev: Vec<serde_json::Value> = events(&r).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            let got: Vec<(&str, &str)> = ev.iter().map(|e| (e["Name"].as_str().unwrap(), e["Hash"].as_str().unwrap())).collect();
            assert_eq!(got, vec![("planets/mars.txt", mars), ("planets/venus.txt", venus), ("planets", planets_cid)], "{q}");
        }
    }
    // `ipfs add -rn mountdir/moons`: names, hashes and order.
    let moons = body(&[
        dir_part("moons"),
        dir_part("moons%2Fjupiter"),
        part("moons%2Fjupiter%2Feuropa.txt", b"Hello Europa!\n"),
        part("moons%2Fmercury.txt", b"hey you are no moon!\n"),
        dir_part("moons%2Fsaturn"),
        part("moons%2Fsaturn%2Ftitan.txt", b"Hello Titan!\n"),
    ]);
    let (r, _) = send(k, "POST", "/api/v0/add?n=true", &moons);
    let got: Vec<String> = events(&r)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("added {} {}", v["Hash"].as_str().unwrap(), v["Name"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            "added Qmbjg7zWdqdMaK2BucPncJQDxiALExph5k3NkQv5RHpccu moons/jupiter/europa.txt",
            "added QmRsTB5CpEUvDUpDgHCzb3VftZ139zrk9zs5ZcgYh9TMPJ moons/mercury.txt",
            "added QmZzppb9WHn552rmRqpPfgU5FEiHH6gDwi3MrB9cTdPwdb moons/saturn/titan.txt",
            "added QmS5mZddhFPLWFX3w6FzAy9QxyYkaxvUpsWCtZ3r7jub9J moons/jupiter",
            "added QmaMagZT4rTE7Nonw8KGSK4oe1bh533yhZrCo1HihSG8FK moons/saturn",
            "added QmbGoaQZm8kjYfCiN1aBsgwhqfUBGDYTrDb91Mz7Dvq81B moons",
        ]
    );
    // Single files, and --cid-base=base32.
    let (r, _) = send(k, "POST", "/api/v0/add", &body(&[part("hello.txt", b"Hello Worlds!\n")]));
    assert!(events(&r)[0].contains("\"Hash\":\"QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH\""));
    let (r, _) = send(k, "POST", "/api/v0/add?cid-base=base32", &body(&[part("base32-test.txt", b"base32 test\n")]));
    assert!(events(&r)[0].contains("\"Hash\":\"bafybeibyosqxljd2eptb4ebbtvk7pb4aoxzqa6ttdsflty6rsslz5y6i34\""));
    let (r, _) = send(k, "POST", "/api/v0/add?raw-leaves=1", &body(&[part("zero-length-file", b"")]));
    assert!(events(&r)[0].contains("\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\""));
}

#[test]
fn binaries_print_their_address() {
    use std::io::BufRead;
    for (exe, kind_line) in [(env!("CARGO_BIN_EXE_kubo-standin"), "kubo/"), (env!("CARGO_BIN_EXE_cluster-standin"), "ipfs-cluster/ipfsproxy/")] {
        let mut child = std::process::Command::new(exe)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr: SocketAddr = line.trim().strip_prefix("listening ").unwrap().parse().unwrap();
        let (r, _) = send(addr, "POST", "/api/v0/add", &body(&[part("a", b"x")]));
        child.kill().unwrap();
        let _ = child.wait();
        assert!(r.contains(&format!("Server: {kind_line}")), "{r}");
    }
}

#[test]
fn deep_paths_do_not_crash() {
    let (k, _) = start(Kind::Kubo);
    let deep = vec!["d"; 2000].join("%2F") + "%2Ff";
    let (r, _) = send(k, "POST", "/api/v0/add", &body(&[part(&deep, b"x")]));
    assert_eq!(events(&r).len(), 2001);
}

#[test]
fn cors_origins() {
    let (k, _) = start(Kind::Kubo);
    let (c, _) = start(Kind::Cluster);
    let b = body(&[part("a", b"x")]);
    let with_origin = |addr: SocketAddr, origin: &str| -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        let head = format!("POST /api/v0/add HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n", b.len());
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&b).unwrap();
        mask_date(&String::from_utf8_lossy(&read_response(&mut s).0))
    };
    // Kubo: an allowed origin (its own port) gets ACAO; another one is refused.
    let r = with_origin(k, &format!("http://127.0.0.1:{}", k.port()));
    assert!(r.contains(&format!("\r\nAccess-Control-Allow-Origin: http://127.0.0.1:{}\r\n", k.port())), "{r}");
    let r = with_origin(k, "http://evil.example");
    assert_eq!(r, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nVary: Origin\r\nX-Content-Type-Options: nosniff\r\nDate: <date>\r\nContent-Length: 16\r\n\r\n403 - Forbidden\n");
    // Cluster: copies Kubo's preflight answer (Kubo on 5001 by default), never refuses.
    let r = with_origin(c, "http://localhost:5001");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: http://localhost:5001\r\nAccess-Control-Expose-Headers:"), "{r}");
    let r = with_origin(c, "http://evil.example");
    assert!(r.starts_with(CLUSTER_HEAD), "{r}");
}
