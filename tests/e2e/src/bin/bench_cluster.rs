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
//! (default 1), `--peers N` (default 3). Two Envoys are measured: the edge as
//! deployed (values.env's flow-control window), and the same Envoy without
//! the Wasm filters. Between adds the root is unpinned and every peer
//! collects its garbage: each add starts from the same stores.

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

/// The seconds of a directory add, and its final event (the directory's).
fn add_dir(port: u16, seed: u64) -> (f64, String) {
    let req = e2e::http::request("POST", "/api/v0/add", Some(&content_type()), &directory(seed));
    let t = Instant::now();
    let r = e2e::http::exchange(port, &req).expect("answer");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.status, 200, "{}", r.semantic());
    assert_eq!(r.lines().len(), FILES + 1, "one event per file and the directory");
    (secs, r.lines().last().cloned().unwrap_or_default())
}

/// Unpins an add's root from the cluster and collects the garbage on every
/// peer, so that each add starts from the same stores (and a run needs the
/// disk of one 1 GiB add on each peer, not of all of them).
fn forget(cluster: &localcluster::Cluster, last_event: &str) {
    let v: serde_json::Value = serde_json::from_str(last_event).unwrap_or_default();
    let Some(cid) = v["Hash"].as_str() else { panic!("no Hash in {last_event}") };
    let (status, body) = localcluster::http(cluster.peers[0].rest(), "DELETE", &format!("/pins/{cid}"), None).expect("unpin");
    assert!(status < 300, "unpin {cid}: {status} {}", String::from_utf8_lossy(&body));
    let t = Instant::now();
    for p in &cluster.peers {
        // Each peer's pin tracker unpins from its Kubo in its own time.
        while localcluster::http(p.kubo_rpc(), "POST", &format!("/api/v0/pin/ls?arg={cid}&type=recursive"), None).is_ok_and(|(s, _)| s == 200) {
            assert!(t.elapsed() < Duration::from_secs(120), "peer {} still pins {cid}", p.index);
            std::thread::sleep(Duration::from_millis(200));
        }
        let (s, body) = localcluster::http(p.kubo_rpc(), "POST", "/api/v0/repo/gc?quiet=true", None).expect("repo gc");
        assert_eq!(s, 200, "repo gc on peer {}: {}", p.index, String::from_utf8_lossy(&body));
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

use e2e::envoy::cpu_secs_of as cpu_secs;

/// One way to the cluster: its port, and the Envoy on the way (none straight).
struct Side<'a> {
    name: &'static str,
    port: u16,
    envoy: Option<&'a e2e::envoy::Envoy>,
}

#[derive(Default)]
struct Figures {
    gib: Vec<f64>,
    dir: Vec<f64>,
    mem: Vec<f64>,
    cpu: Vec<f64>,
    /// Envoy's CPU time over the daemons' during the same add.
    share: Vec<f64>,
}

fn main() {
    let rounds = arg("--rounds", 1);
    let peers = arg("--peers", 3);
    let t = Instant::now();
    let cluster = localcluster::start(peers).unwrap_or_else(|e| panic!("local cluster: {e}"));
    let p = &cluster.peers[0];
    // As deployed: Envoy Gateway's ClientTrafficPolicy and BackendTrafficPolicy set
    // the listener's and the clusters' flow-control window to values.env's
    // BUFFER_LIMIT (envoy.yaml keeps Envoy Gateway's own default, 32 KiB,
    // stricter, for its tests). The same Envoy without the Wasm filters tells
    // the filters' share of the hop from Envoy's own.
    let deployed = e2e::values::bytes("BUFFER_LIMIT");
    let with_window = |filters: bool| {
        let mut patches = e2e::stack::patches(p.ports.proxy, p.ports.kubo_rpc, "{}", filters);
        patches.push(e2e::envoy_config::Patch::BufferLimit(deployed));
        if filters {
            e2e::envoy::Envoy::start("manifests/envoy/envoy.yaml", &patches)
        } else {
            e2e::envoy::Envoy::start_without_filters("manifests/envoy/envoy.yaml", &patches)
        }
    };
    let (envoy, bare) = (with_window(true), with_window(false));
    let sides = [
        Side { name: "straight to the proxy", port: p.ports.proxy, envoy: None },
        Side { name: "through the edge as deployed", port: envoy.port, envoy: Some(&envoy) },
        Side { name: "through the same Envoy without the Wasm filters", port: bare.port, envoy: Some(&bare) },
    ];
    println!(
        "real-daemon add benchmark: {peers} peers (up in {:.1} s), {rounds} round(s); baseline = the same add straight to the cluster proxy; \
         the edge as deployed has a {} KiB flow-control window (values.env BUFFER_LIMIT)\n",
        t.elapsed().as_secs_f64(),
        deployed / 1024
    );
    let mut figures: Vec<Figures> = sides.iter().map(|_| Figures::default()).collect();
    let mut seed = std::process::id() as u64 * 1000;
    for round in 0..rounds {
        // Each side goes first in turn: load that drifts weighs on all alike.
        let mut times = vec![(0.0, 0.0); sides.len()];
        for k in 0..sides.len() {
            let i = (k + round) % sides.len();
            let side = &sides[i];
            seed += 1;
            // Envoy's RSS sampled through the upload, and its CPU time.
            let stop = Arc::new(AtomicBool::new(false));
            let peak = Arc::new(AtomicU64::new(0));
            let pid = side.envoy.map(|e| e.pid());
            let (before, cpu0) = pid.map_or((0, 0.0), |pid| (e2e::envoy::rss_of(pid), cpu_secs(pid)));
            let daemons = || cluster.pids().into_iter().map(cpu_secs).sum::<f64>();
            let daemons0 = daemons();
            let sampler = pid.map(|pid| {
                let (stop, peak) = (stop.clone(), peak.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(e2e::envoy::rss_of(pid), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            });
            let (secs, last) = add_gib(side.port, seed);
            let daemons_cpu = daemons() - daemons0;
            stop.store(true, Ordering::Relaxed);
            if let (Some(s), Some(pid)) = (sampler, pid) {
                s.join().unwrap();
                figures[i].mem.push(peak.load(Ordering::Relaxed).saturating_sub(before) as f64 / (1 << 20) as f64);
                let cpu = cpu_secs(pid) - cpu0;
                figures[i].cpu.push(cpu);
                figures[i].share.push(cpu / daemons_cpu);
            }
            eprintln!("  1 GiB {} {:.1} s, daemons' CPU {daemons_cpu:.1} s: {last}", side.name, secs);
            forget(&cluster, &last);
            seed += 1;
            let (d, root) = add_dir(side.port, seed);
            eprintln!("  {FILES} files {} {:.1} s", side.name, d);
            forget(&cluster, &root);
            times[i] = (secs, d);
        }
        // Throughput ratio edge / straight = time straight / time edge.
        for i in 1..sides.len() {
            figures[i].gib.push(times[0].0 / times[i].0);
            figures[i].dir.push(times[0].1 / times[i].1);
        }
    }
    println!("| measure | {} (median of {rounds}) | {} | goal |", sides[1].name, sides[2].name);
    println!("| --- | --- | --- | --- |");
    let (a, b) = (&figures[1], &figures[2]);
    println!("| 1 GiB add, throughput against straight to the proxy | {:.3} | {:.3} | >= 0.97 |", median(&a.gib), median(&b.gib));
    println!("| Envoy peak RSS growth during it (MiB) | {:.1} | {:.1} | <= 32 |", median(&a.mem), median(&b.mem));
    println!("| Envoy CPU seconds for it | {:.2} | {:.2} | - |", median(&a.cpu), median(&b.cpu));
    // Where the daemons use every core, as here, each CPU second of the hop is
    // taken from them: the ratio the CPU time alone allows.
    println!(
        "| Envoy CPU over the daemons' CPU during it (1 / (1 + x): the throughput ratio where Envoy and the daemons share the cores) | {:.4} ({:.3}) | {:.4} ({:.3}) | - |",
        median(&a.share),
        1.0 / (1.0 + median(&a.share)),
        median(&b.share),
        1.0 / (1.0 + median(&b.share))
    );
    println!("| {FILES}-file directory add, throughput against straight | {:.3} | {:.3} | - |", median(&a.dir), median(&b.dir));
}
