//! The cluster's own failures through the edge, with real daemons killed by
//! signals: a cluster peer killed during an add (the one behind the edge,
//! and another one), and the whole cluster restarted. Each is compared with
//! what Kubo itself answers in the same situation (README: "The cluster's
//! failures, as a client sees them"). The Kubo behind a peer stopped is in
//! failures.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use e2e::envoy::{Envoy, Patch};
use e2e::http::{exchange, request, Response};
use e2e::upload::{body, content, content_type, Entry};
use localcluster::Cluster;

/// A cluster of this binary's own (its tests kill its daemons), one test at
/// a time, whole again at the start of each (a failed test may have left a
/// daemon down).
fn cluster() -> MutexGuard<'static, Cluster> {
    static C: OnceLock<Mutex<Cluster>> = OnceLock::new();
    let mut c = C.get_or_init(|| Mutex::new(localcluster::start(3).expect("local cluster"))).lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..c.peers.len() {
        let (kubo, service) = c.running(i);
        if !kubo {
            c.start_kubo(i).expect("Kubo back");
        }
        if !service {
            c.start_service(i).expect("cluster peer back");
        }
    }
    c
}

/// The manifest in front of peer 0's four daemons, `add` open to all (a
/// test setting, as in the add tests).
fn edge(c: &Cluster) -> Envoy {
    let p = &c.peers[0];
    Envoy::start(
        e2e::edge::CONFIG,
        &[
            Patch::ClusterPort("cluster_proxy", p.ports.proxy),
            Patch::ClusterPort("kubo_rpc", p.ports.kubo_rpc),
            Patch::ClusterPort("cluster_rest", p.ports.rest),
            Patch::ClusterPort("gateway", p.ports.gateway),
            Patch::FilterConfig("router", e2e::stack::ADD_ROUTER_CONFIG.into()),
        ],
    )
}

fn add_request(query: &str, name: &str, data: &[u8]) -> Vec<u8> {
    request("POST", &format!("/api/v0/add{query}"), Some(&content_type()), &body(&[Entry::File(name, data)]))
}

/// What a client read from an add whose daemon was killed once the first
/// progress event came: the upload is sent in two halves, `kill` runs
/// between them, and whatever arrives until the connection ends is kept
/// (a write refused by then is part of what the client sees).
fn add_killed_midway(port: u16, req: &[u8], kill: impl FnOnce()) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let half = req.len() / 2;
    s.write_all(&req[..half]).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while !contains(&seen, b"\"Bytes\":") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => panic!("no progress event before the kill: {}", String::from_utf8_lossy(&seen)),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    kill();
    let _ = s.write_all(&req[half..]);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(55), "the answer neither ended nor broke in 60 s: {e}");
                break;
            }
        }
    }
    seen
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A broken add answer: `200`, progress events, then the stream stops
/// before its end and before any final event.
fn assert_cut_without_final_event(raw: &[u8], who: &str) {
    let text = String::from_utf8_lossy(raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{who}: {text}");
    assert!(text.contains(r#"{"Name":"big.bin","Bytes":"#), "{who}: progress passes: {text}");
    assert!(!text.contains("\"Hash\""), "{who}: a final event came: {text}");
    assert!(e2e::http::parse(raw).is_none(), "{who}: the broken answer came out complete:\n{text}");
}

fn final_cid(r: &Response) -> String {
    let v: serde_json::Value = serde_json::from_str(r.lines().last().expect("an event")).expect("a JSON event");
    v["Hash"].as_str().expect("a final event").to_string()
}

/// Whether `cid` is in the cluster's pin set, asked through peer `i`'s REST API.
fn pinned_at(c: &Cluster, i: usize, cid: &str) -> bool {
    let (status, b) = localcluster::http(c.peers[i].rest(), "GET", "/pins", None).expect("REST /pins");
    status == 200 && localcluster::json_values(&b).iter().any(|p| p["cid"].as_str() == Some(cid))
}

fn pinned(c: &Cluster, cid: &str) -> bool {
    pinned_at(c, 0, cid)
}

/// Each peer's pin status of `cid` (`pinned`, `unpinned`, ...), by peer index.
fn statuses(c: &Cluster, cid: &str) -> Vec<String> {
    let (_, b) = localcluster::http(c.peers[0].rest(), "GET", &format!("/pins/{cid}"), None).expect("REST /pins/CID");
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
    c.peers.iter().map(|p| v["peer_map"][&p.cluster_id]["status"].as_str().unwrap_or("").to_string()).collect()
}

/// The CID Kubo gives `req`'s content, without storing it.
fn cid_of(c: &Cluster, data: &[u8]) -> String {
    let r = exchange(c.peers[0].ports.kubo_rpc, &add_request("?only-hash=true", "big.bin", data)).unwrap();
    final_cid(&r)
}

/// Envoy's own answer when it cannot connect to the backend.
const ENVOY_503: &str = "503\ncontent-type: text/plain\n\nupstream connect error or disconnect/reset before headers. reset reason: remote connection failure";

fn assert_upstream_down(r: std::io::Result<Response>, what: &str) {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.semantic(), ENVOY_503, "{what}");
}

#[test]
fn the_peer_behind_the_edge_killed_during_an_add_looks_like_kubo_killed_during_an_add() {
    let mut c = cluster();
    let envoy = edge(&c);
    let data = content(8 * 1024 * 1024, 41);
    let req = add_request("?progress=true", "big.bin", &data);
    let cid = cid_of(&c, &data);

    // Kubo itself, killed mid-add: 200, the progress so far, then the
    // connection ends inside the chunked body, with no final event.
    let kubo_port = c.peers[0].ports.kubo_rpc;
    let kubo = add_killed_midway(kubo_port, &req, || c.kill_kubo(0, "KILL"));
    assert_cut_without_final_event(&kubo, "Kubo killed mid-add");
    c.start_kubo(0).unwrap();

    // The cluster peer behind the edge, killed mid-add: the same for the
    // client. Envoy had passed the 200 and the events; the upstream
    // connection breaks, and Envoy breaks the client's (no last chunk).
    let proxy = add_killed_midway(envoy.port, &req, || c.kill_service(0, "KILL"));
    assert_cut_without_final_event(&proxy, "cluster peer killed mid-add");
    // Nothing half-added is pinned (asked of a peer still up).
    assert!(!pinned_at(&c, 1, &cid), "a killed add was pinned");
    // While the peer is down the edge answers itself: Envoy's 503, not a
    // refused connection (Kubo down refuses it).
    let small = add_request("", "small.bin", b"small");
    assert_upstream_down(exchange(envoy.port, &small), "an add, the peer down");
    assert!(exchange(c.peers[0].ports.proxy, &small).is_err(), "the killed proxy still answers");

    // Restarted (same data, same ports): the same add works and pins.
    c.start_service(0).unwrap();
    let again = exchange(envoy.port, &req).unwrap();
    assert_eq!(again.status, 200, "{}", again.semantic());
    assert_eq!(final_cid(&again), cid);
    assert!(pinned(&c, &cid), "the add after the restart did not pin");
}

#[test]
fn another_peer_killed_during_an_add() {
    let mut c = cluster();
    let envoy = edge(&c);
    let data = content(8 * 1024 * 1024, 43);
    let req = add_request("?progress=true", "big.bin", &data);
    let kubo = exchange(c.peers[0].ports.kubo_rpc, &add_request("?progress=true&only-hash=true", "big.bin", &data)).unwrap();
    let cid = final_cid(&kubo);
    // Peer 1 dies while peer 0, behind the edge, adds (replication factor
    // -1: every peer is a destination of the add's blocks). The add goes
    // on with the peers left: the client gets Kubo's whole answer, as Kubo
    // gives it when a swarm peer goes away, and the pin is made.
    let raw = add_killed_midway(envoy.port, &req, || c.kill_service(1, "KILL"));
    let text = String::from_utf8_lossy(&raw);
    let edge = e2e::http::parse(&raw).unwrap_or_else(|| panic!("a broken answer: {text}"));
    assert!(edge.trailers.is_empty(), "{text}");
    assert_eq!(edge.lines(), kubo.lines(), "Kubo's events");
    assert!(pinned(&c, &cid), "the add did not pin");
    // The peers that were up pinned it; peer 1, its cluster peer dead while
    // the pin was made, does not have it right after its restart: the
    // cluster's state reaches it later (README).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = statuses(&c, &cid);
        if (st[0].as_str(), st[2].as_str()) == ("pinned", "pinned") {
            // The dead peer: `cluster_error` or gone from the map.
            assert_ne!(st[1], "pinned", "{st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not pinned where the peers are up: {st:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    c.start_service(1).unwrap();
    eprintln!("peer 1 restarted, pin statuses by peer: {:?}", statuses(&c, &cid));
}

#[test]
fn the_cluster_restarted() {
    let mut c = cluster();
    let envoy = edge(&c);
    let data = content(300_000, 45);
    let req = add_request("", "kept.bin", &data);
    let before = exchange(envoy.port, &req).unwrap();
    assert_eq!(before.status, 200, "{}", before.semantic());
    let cid = final_cid(&before);
    assert!(pinned(&c, &cid));

    c.stop();
    // Down: Kubo refuses the connection; through the edge, Envoy answers
    // its own 503 to whatever it could read (a small add, a gateway read,
    // a REST call). An upload larger than Envoy's 32 KiB buffer is cut
    // instead: Envoy answers before it read the body and closes, and the
    // client's unread bytes turn the close into a reset.
    let small = add_request("", "small.bin", b"small");
    let kubo_down = exchange(c.peers[0].ports.kubo_rpc, &small);
    let down = exchange(envoy.port, &small);
    let big_down = exchange(envoy.port, &req);
    let read = e2e::http::get(envoy.port, &format!("/ipfs/{cid}"));
    let rest = e2e::http::get(envoy.port, "/id");
    c.restart().unwrap();
    assert!(kubo_down.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused));
    assert_upstream_down(down, "an add, the cluster down");
    assert_upstream_down(read, "a gateway read, the cluster down");
    assert_upstream_down(rest, "a REST call, the cluster down");
    match big_down {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "a large add, the cluster down: {e}"),
        Ok(r) => assert_eq!(r.semantic(), ENVOY_503, "a large add, the cluster down"),
    }

    // Back (same data): the pin kept, the content readable, the same add
    // the same answer.
    let after = exchange(envoy.port, &req).unwrap();
    assert_eq!(after.semantic(), before.semantic(), "the same add after the restart");
    assert!(pinned(&c, &cid), "the pin did not survive the restart");
    let read = e2e::http::get(envoy.port, &format!("/ipfs/{cid}")).unwrap();
    assert_eq!((read.status, read.body == data), (200, true), "{}", read.semantic());
}
