//! `./x bench` (or `cargo run --release -p e2e --bin bench_cluster`): adds
//! through the edge against the same adds straight to the real cluster
//! proxy, in one run, with a local cluster of real Kubo + ipfs-cluster peers
//! (tests/localcluster). What a user gets: the daemons, not Envoy, set the
//! pace.
//!
//! 1. A 1 GiB add (goal: through the edge >= 0.97 of straight to the proxy).
//! 2. Envoy's peak resident memory growth during it (goal: <= 32 MiB).
//! 3. A directory add of 10,000 small files (the same ratio, reported).
//!
//! Each add gets content of its own (no deduplication helps the second);
//! the order of the two sides turns each round. Options: `--rounds N`
//! (default 1), `--peers N` (default 3).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::upload::{content, content_type, BOUNDARY};

const GIB: usize = 1 << 30;
const FILES: usize = 10_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Sends an add of a generated 1 GiB file (1 MiB blocks, each marked with
/// `seed` and its index) to `port`; the seconds until the last byte of the
/// answer, and its final event.
fn add_gib(port: u16, seed: u64) -> (f64, String) {
    let head_part = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    let tail_part = format!("\r\n--{BOUNDARY}--\r\n");
    let total = head_part.len() + GIB + tail_part.len();
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!("POST /api/v0/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {}\r\nContent-Length: {total}\r\n\r\n", content_type());
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(head_part.as_bytes()).unwrap();
    let mut block = content(1 << 20, seed);
    for i in 0..1024u64 {
        block[..8].copy_from_slice(&i.to_le_bytes());
        block[8..16].copy_from_slice(&seed.to_le_bytes());
        s.write_all(&block).unwrap();
    }
    s.write_all(tail_part.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let r = e2e::http::parse(&raw).unwrap_or_else(|| panic!("no complete answer: {:?}", String::from_utf8_lossy(&raw[..raw.len().min(500)])));
    assert_eq!(r.status, 200, "{}", r.semantic());
    (secs, r.lines().last().cloned().unwrap_or_default())
}

/// A directory of `FILES` small files, content marked with `seed`.
fn directory(seed: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n").as_bytes());
    for i in 0..FILES {
        b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir%2Ff{i}.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nfile {i} of run {seed}\r\n").as_bytes());
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn add_dir(port: u16, seed: u64) -> f64 {
    let req = e2e::http::request("POST", "/api/v0/add", Some(&content_type()), &directory(seed));
    let t = Instant::now();
    let r = e2e::http::exchange(port, &req).expect("answer");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.status, 200, "{}", r.semantic());
    assert_eq!(r.lines().len(), FILES + 1, "one event per file and the directory");
    secs
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rounds = arg("--rounds", 1);
    let peers = arg("--peers", 3);
    let t = Instant::now();
    let cluster = localcluster::start(peers).unwrap_or_else(|e| panic!("local cluster: {e}"));
    let p = &cluster.peers[0];
    let envoy = e2e::stack::envoy_in_front_of(p.ports.proxy, p.ports.kubo_rpc, "{}", true);
    println!("real-daemon add benchmark: {peers} peers (up in {:.1} s), {rounds} round(s); baseline = the same add straight to the cluster proxy\n", t.elapsed().as_secs_f64());
    let (mut gib, mut dir, mut mem) = (Vec::new(), Vec::new(), Vec::new());
    let mut seed = std::process::id() as u64 * 1000;
    for round in 0..rounds {
        let edge_first = round % 2 == 1;
        let mut one = |edge: bool| -> (f64, f64) {
            seed += 1;
            let port = if edge { envoy.port } else { p.ports.proxy };
            // Envoy's RSS sampled through the upload.
            let stop = Arc::new(AtomicBool::new(false));
            let peak = Arc::new(AtomicU64::new(0));
            let pid = envoy.pid();
            let before = e2e::envoy::rss_of(pid);
            let sampler = {
                let (stop, peak) = (stop.clone(), peak.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(e2e::envoy::rss_of(pid), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            };
            let (secs, last) = add_gib(port, seed);
            stop.store(true, Ordering::Relaxed);
            sampler.join().unwrap();
            if edge {
                mem.push(peak.load(Ordering::Relaxed).saturating_sub(before) as f64 / (1 << 20) as f64);
            }
            eprintln!("  1 GiB {} {:.1} s: {last}", if edge { "through the edge" } else { "straight to the proxy" }, secs);
            seed += 1;
            let d = add_dir(port, seed);
            eprintln!("  {FILES} files {} {:.1} s", if edge { "through the edge" } else { "straight to the proxy" }, d);
            (secs, d)
        };
        let (a, b) = if edge_first {
            let e = one(true);
            (one(false), e)
        } else {
            let s = one(false);
            (s, one(true))
        };
        // Throughput ratio edge / straight = time straight / time edge.
        gib.push(a.0 / b.0);
        dir.push(a.1 / b.1);
    }
    println!("| measure | through the edge / straight to the cluster proxy (median) | goal |");
    println!("| --- | --- | --- |");
    println!("| 1 GiB add, throughput | {:.3} | >= 0.97 |", median(&gib));
    println!("| Envoy peak RSS growth during it (MiB) | {:.1} | <= 32 |", median(&mem));
    println!("| {FILES}-file directory add, throughput | {:.3} | - |", median(&dir));
}
