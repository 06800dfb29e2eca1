//! `./x bench` (or `cargo run --release -p e2e --bin bench`): the add
//! filter's cost, as ratios against the same Envoy without the filter,
//! measured in the same run (these machines are noisy; absolute figures are
//! printed for reference only).
//!
//! 1. Upload throughput of a 1 GiB add (goal: with/without >= 0.95).
//! 2. Envoy's peak resident memory growth during that upload (goal with
//!    the filter: <= 32 MiB).
//! 3. Rewrite cost: events per second of a 100,000-entry directory add
//!    (goal: within 10% of Envoy without the filter).
//!
//! Options: `--rounds N` (default 3; the median is reported).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::envoy::Envoy;
use e2e::sink::{self, Answer};
use e2e::stack::{envoy_in_front_of, envoy_with_add_response_only};
use e2e::upload::{content, content_type, BOUNDARY};

const GIB: usize = 1 << 30;
const ENTRIES: usize = 100_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args.iter().position(|a| a == "--rounds").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(3usize);

    let digest_sink = sink::spawn(Answer::Digest);
    let events = Arc::new(directory_events());
    let event_sink = sink::spawn(Answer::Events(events.clone()));

    println!("add_response benchmark: {rounds} rounds, medians; baseline = the same Envoy without the Wasm filter\n");

    // Each round measures the variants back to back, in an order that
    // turns each round, and ratios are taken per round: load that drifts
    // during the run then weighs on both sides of each ratio alike. The
    // idle variant (the filter loaded, the request not an add) shows what
    // any Wasm filter costs here, apart from this one's work.
    let add_dir = directory_request("/api/v0/add");
    let other_dir = directory_request("/api/v0/block/put");
    let mut up: [Vec<f64>; 3] = Default::default();
    let mut mem: [Vec<f64>; 3] = Default::default();
    let mut ev: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let mut order = [Variant::None, Variant::Idle, Variant::Working];
        order.rotate_left(round % 3);
        for v in order {
            // 1 + 2: upload throughput and memory.
            let envoy = start(digest_sink.port(), v);
            let (secs, growth) = upload_gib(&envoy, v.path());
            up[v as usize].push(GIB as f64 / secs / (1 << 20) as f64);
            mem[v as usize].push(growth as f64 / (1 << 20) as f64);
            drop(envoy);
            // 3: events per second.
            let envoy = start(event_sink.port(), v);
            let request = if v == Variant::Idle { &other_dir } else { &add_dir };
            let secs = directory_add(&envoy, request, events.len());
            ev[v as usize].push(events.len() as f64 / secs);
        }
    }
    let ratio = |x: &[Vec<f64>; 3], a: Variant, b: Variant| median(&x[a as usize].iter().zip(&x[b as usize]).map(|(p, q)| p / q).collect::<Vec<_>>());
    let m = |x: &[Vec<f64>; 3], v: Variant| median(&x[v as usize]);
    use Variant::*;
    println!("| measure | no Wasm filter | add_response loaded, idle | add_response at work | at work / none | at work / idle | goal (at work / none) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| 1 GiB upload throughput (MiB/s) | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | >= 0.95 |",
        m(&up, None), m(&up, Idle), m(&up, Working), ratio(&up, Working, None), ratio(&up, Working, Idle)
    );
    println!(
        "| Envoy peak RSS growth during it (MiB) | {:.1} | {:.1} | {:.1} | - | - | at work <= 32 |",
        m(&mem, None), m(&mem, Idle), m(&mem, Working)
    );
    println!(
        "| 100,000-entry directory add (events/s) | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | >= 0.90 |",
        m(&ev, None), m(&ev, Idle), m(&ev, Working), ratio(&ev, Working, None), ratio(&ev, Working, Idle)
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Envoy without Wasm filters.
    None = 0,
    /// add_response loaded, the request not an add: Envoy's cost of
    /// running a Wasm filter at all.
    Idle = 1,
    /// add_response rewriting an add.
    Working = 2,
}

impl Variant {
    fn path(self) -> &'static str {
        if self == Variant::Idle { "/api/v0/block/put" } else { "/api/v0/add" }
    }
}

/// Envoy in front of `upstream`: with add_response as its one Wasm filter,
/// or with none (the other two filters are measured by bench_edge).
fn start(upstream: u16, v: Variant) -> Envoy {
    if v != Variant::None {
        envoy_with_add_response_only(upstream, upstream, "{}")
    } else {
        envoy_in_front_of(upstream, upstream, "{}", false)
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

/// Sends a 1 GiB add through `envoy`; returns seconds and Envoy's peak RSS
/// growth in bytes.
fn upload_gib(envoy: &Envoy, path: &str) -> (f64, u64) {
    let head_part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail_part = format!("\r\n--{BOUNDARY}--\r\n");
    let total = head_part.len() + GIB + tail_part.len();
    let block = content(1 << 20, 5);

    let base = envoy.rss_bytes();
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        let pid = envoy.pid();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(e2e::envoy::rss_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {}\r\nContent-Length: {total}\r\n\r\n{head_part}",
        content_type()
    );
    s.write_all(head.as_bytes()).unwrap();
    for _ in 0..1024 {
        s.write_all(&block).unwrap();
    }
    s.write_all(tail_part.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let r = e2e::http::parse(&raw).expect("response");
    assert_eq!(r.header("x-sink-bytes"), Some(total.to_string().as_str()), "upload incomplete");
    (secs, peak.load(Ordering::Relaxed).saturating_sub(base))
}

/// What the cluster proxy streams for a directory of 100,000 small files:
/// per file its final event (names relative to the entry, as the cluster
/// writes them), then the directory.
fn directory_events() -> Vec<Vec<u8>> {
    let cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";
    let mut v: Vec<Vec<u8>> = (0..ENTRIES).map(|i| format!("{{\"Name\":\"dir/file-{i:06}.txt\",\"Hash\":\"{cid}\",\"Size\":\"17\"}}\n").into_bytes()).collect();
    v.push(format!("{{\"Name\":\"dir\",\"Hash\":\"{cid}\",\"Size\":\"4200000\"}}\n").into_bytes());
    v
}

/// The upload those events answer: the directory part and 100,000 file
/// parts, so the filter's multipart reader does its full work too.
fn directory_request(path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n").as_bytes());
    for i in 0..ENTRIES {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir%2Ffile-{i:06}.txt\"\r\nContent-Type: application/octet-stream\r\n\r\ncontent {i:06}\r\n").as_bytes(),
        );
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    e2e::http::request("POST", &format!("{path}?progress=false"), Some(&content_type()), &b)
}

/// Sends the directory add and reads every event; returns seconds.
fn directory_add(envoy: &Envoy, request: &[u8], expected: usize) -> f64 {
    let start = Instant::now();
    let r = e2e::http::exchange(envoy.port, request).unwrap_or_else(|e| {
        let log = envoy.log();
        panic!("directory add: {e}\nenvoy log:\n{}", &log[log.len().saturating_sub(3000)..])
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(r.lines().len(), expected, "events lost");
    secs
}
