//! `cargo run --release -p e2e --bin bench_edge`: the health and router
//! filters' cost, against the same Envoy (manifests/envoy/envoy.yaml)
//! without the Wasm filters, measured in the same run (these machines are
//! noisy; absolute figures are printed for reference only).
//!
//! 1. Health answers per second: `GET /` answered by health.wasm, against
//!    Envoy's own `direct_response` for the same request and body (the
//!    manifest's `health` route, reached with the mark set by the client).
//!    Goal: >= 0.9.
//! 2. Latency the router adds: `POST /api/v0/version` to a local backend,
//!    one keep-alive connection per side, one request at a time, the sides
//!    taking turns in blocks of `--block` requests; with router.wasm (which removes the
//!    client's mark and sets its own) against the baseline routed by the
//!    client's mark. p50 and p99 differences. Goal: <= 50 us at p99.
//!
//! 3. The manifest as deployed (each filter only on the routes that need
//!    it) against the same Envoy without the Wasm filters: gateway
//!    `GET /ipfs/...` per second at saturation (goal >= 0.90) and its added
//!    latency (goals <= 25 us p50, <= 40 us p99), which Envoy's native read
//!    route takes without any filter; the same read with an escape in its
//!    path, which the router decides (for reference: what every other
//!    request pays); health probes over a connection each against
//!    `direct_response` (goal >= 0.90).
//!
//! Two floors, measured beside them, say how much of a filter's cost is
//! Envoy's for running any Proxy-Wasm filter at all:
//! - "SDK floor": health.wasm with every callback but the SDK's context
//!   bookkeeping unexported (filters/trim), so Envoy only creates and
//!   deletes a context per request: the least any filter built on the
//!   proxy-wasm SDK can cost.
//! - "idle": health.wasm as built, configured for a path nobody asks for:
//!   it reads the request headers and lets the request pass.
//!
//! Options: `--rounds N` (default 3), `--seconds S` per throughput round
//! (default 3), `--requests N` latency samples per side (default 30000),
//! `--block N` latency samples per turn (default 1000).
//!
//! `--auth`: instead, what checking a credential costs per request in the
//! router (filters/router/README.md, "Credentials"): `POST
//! /api/v0/pin/add?arg=CID` opened to everyone (baseline) against the same
//! request with `Bearer` (its SHA-256 configured), Basic with a plain-text
//! password (one SHA-256), and Basic with PBKDF2-HMAC-SHA256 hashes of 1,000
//! and 10,000 rounds (the most the router takes); `--requests` (default here
//! 2000) per side, turns of 100.

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::envoy::{Envoy, Patch};
use e2e::load::{gateway_read, CLEAN, ESCAPED};
use e2e::ok_backend::read_head;

const CONFIG: &str = "manifests/envoy/envoy.yaml";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = arg(&args, "--rounds", 3) as usize;
    let seconds = arg(&args, "--seconds", 3);
    let samples = arg(&args, "--requests", 30_000) as usize;
    let block = arg(&args, "--block", 1000).max(1) as usize;
    let backend = e2e::ok_backend::spawn();
    if args.iter().any(|a| a == "--auth") {
        return auth(backend, arg(&args, "--requests", 2000) as usize);
    }
    if let Some(builds) = args.iter().position(|a| a == "--router-builds").and_then(|i| args.get(i + 1)) {
        let builds: Vec<&str> = builds.split(',').collect();
        return router_builds(backend, &builds, rounds, seconds, samples, block);
    }
    let patches = |extra: &[Patch]| -> Vec<Patch> {
        ["cluster_rest", "cluster_proxy", "kubo_rpc", "gateway"]
            .into_iter()
            .map(|c| Patch::ClusterPort(c, backend))
            .chain(extra.iter().cloned())
            .collect()
    };
    let floor_wasm = sdk_floor_wasm();
    // The baseline takes the client's mark (the manifest removes it before
    // routing, for the router to set its own).
    let base = Envoy::start_keeping(CONFIG, &patches(&[Patch::Manager("early_header_mutation_extensions", "[]")]), &[]);
    // The floors run health.wasm on every route (the manifest runs it on its
    // path only), so that it sees the requests it has nothing to do with.
    let keep_mark = Patch::Manager("early_header_mutation_extensions", "[]");
    let floor = Envoy::start_keeping(
        CONFIG,
        &patches(&[Patch::FilterCode("health", floor_wasm.display().to_string()), Patch::FilterEverywhere("health"), keep_mark.clone()]),
        &["health"],
    );
    let idle = Envoy::start_keeping(
        CONFIG,
        &patches(&[Patch::FilterConfig("health", IDLE.into()), Patch::FilterEverywhere("health"), keep_mark]),
        &["health"],
    );
    let health = Envoy::start_keeping(CONFIG, &patches(&[]), &["health"]);
    let router = Envoy::start_keeping(CONFIG, &patches(&[]), &["router"]);
    // The manifest as deployed: health, router and add_response, each on
    // the routes that need it.
    let chain = Envoy::start_keeping(CONFIG, &patches(&[]), &["*"]);
    // Envoy has read the module once started.
    let _ = std::fs::remove_file(&floor_wasm);

    println!("health and router benchmark: {rounds} rounds, median; baseline = the same Envoy without the Wasm filters, one worker thread\n");

    // 1. Health answers per second; every side's rounds alternate.
    let probe = b"GET / HTTP/1.1\r\nHost: lb\r\nUser-Agent: GoogleHC/1.0\r\n\r\n".to_vec();
    let direct = b"GET / HTTP/1.1\r\nHost: lb\r\nUser-Agent: GoogleHC/1.0\r\nx-ipfs-edge-backend: health\r\n\r\n".to_vec();
    let sides = [(base.port, &direct), (floor.port, &direct), (idle.port, &direct), (health.port, &probe)];
    for (port, req) in sides {
        check(port, req, 200, b"{\"status\":\"ok\"}\n");
    }
    let modes = [Conns::KeepAlive, Conns::PerProbe];
    // rps[mode][side]: one figure per round.
    let mut rps: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); sides.len()]; modes.len()];
    for _ in 0..rounds {
        for (mode, per_side) in modes.iter().zip(&mut rps) {
            for ((port, req), r) in sides.iter().zip(per_side.iter_mut()) {
                r.push(throughput(*port, req, seconds, *mode));
            }
        }
    }

    // 2. Router latency. The sides take turns in blocks, so drift and noise
    // hit them alike, while each Envoy stays as warm as a worker under
    // steady traffic (turns of one request leave every Envoy's caches cold:
    // all sides slower, the Wasm ones most).
    let marked = b"POST /api/v0/version HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\nx-ipfs-edge-backend: kubo\r\n\r\n".to_vec();
    let plain = b"POST /api/v0/version HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\n\r\n".to_vec();
    let [b, f, i, r] = latency(&[(base.port, &marked), (floor.port, &marked), (idle.port, &marked), (router.port, &plain)], samples, block);
    // The whole chain in a phase of its own, so that a fifth Envoy taking
    // turns does not cool the others' caches.
    let [b2, c] = latency(&[(base.port, &marked), (chain.port, &plain)], samples, block);

    // 3. The manifest as deployed against the same Envoy without the Wasm
    // filters: what a gateway read, the bulk of the traffic, pays (a clean
    // one takes Envoy's native read route and runs no filter), the same read
    // with an escape in its path (the router alone decides it), and a probe
    // on `/` (health, and the router behind it, run on that path).
    let read = gateway_read("edge", CLEAN, false);
    let escaped = gateway_read("edge", ESCAPED, false);
    let escaped_marked = gateway_read("edge", ESCAPED, true);
    for (port, req) in [(base.port, &read), (chain.port, &read), (base.port, &escaped_marked), (chain.port, &escaped)] {
        check(port, req, 200, b"ok\n");
    }
    check(chain.port, &probe, 200, b"{\"status\":\"ok\"}\n");
    // Rounds alternate between the sides, as above: [clean read, read with an escape] x
    // [baseline, as deployed].
    let reads = [[(&base, &read), (&chain, &read)], [(&base, &escaped_marked), (&chain, &escaped)]];
    let (mut read_rps, mut read_cpu) = (vec![[Vec::new(), Vec::new()]; 2], vec![[Vec::new(), Vec::new()]; 2]);
    let (mut probe_rps, mut probe_cpu) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for _ in 0..rounds {
        for (kind, sides) in reads.iter().enumerate() {
            for (k, (envoy, req)) in sides.iter().enumerate() {
                let (rps, cpu) = throughput_cpu(envoy, req, seconds, Conns::KeepAlive);
                read_rps[kind][k].push(rps);
                read_cpu[kind][k].push(cpu);
            }
        }
        for (k, (envoy, req)) in [(&base, &direct), (&chain, &probe)].into_iter().enumerate() {
            let (rps, cpu) = throughput_cpu(envoy, req, seconds, Conns::PerProbe);
            probe_rps[k].push(rps);
            probe_cpu[k].push(cpu);
        }
    }
    let [b3, g, b4, ge] = latency(&[(base.port, &read), (chain.port, &read), (base.port, &escaped_marked), (chain.port, &escaped)], samples, block);

    println!("| measure | baseline (no Wasm) | SDK floor | idle health.wasm | with the filter | filter vs baseline | SDK floor vs baseline | goal |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (mode, per_side) in modes.iter().zip(&rps) {
        let [hb, hf, hi, hh] = [0, 1, 2, 3].map(|k| median(&per_side[k]));
        let how = match mode {
            Conns::KeepAlive => "4 keep-alive connections",
            Conns::PerProbe => "a connection per probe, as kube-probe",
        };
        println!(
            "| health answers per second (`GET /`, {how}) | {hb:.0} (`direct_response`) | {hf:.0} | {hi:.0} | {hh:.0} (health.wasm) | {:.3} | {:.3} | >= 0.9 |",
            hh / hb,
            hf / hb
        );
    }
    for (name, sel, goal) in [("p50", 0, "-"), ("p99", 1, "<= 50 us")] {
        println!(
            "| request latency {name} (us) | {:.1} | {:.1} | {:.1} | {:.1} (router.wasm) | +{:.1} us | +{:.1} us | {goal} |",
            b.pooled[sel],
            f.pooled[sel],
            i.pooled[sel],
            r.pooled[sel],
            r.added(&b)[sel],
            f.added(&b)[sel]
        );
    }
    for (name, sel) in [("p50", 0), ("p99", 1)] {
        println!(
            "| request latency {name} (us), the manifest as deployed (on this request the router alone) | {:.1} | | | {:.1} (router) | +{:.1} us | | (for reference) |",
            b2.pooled[sel],
            c.pooled[sel],
            c.added(&b2)[sel]
        );
    }
    println!("\nThe manifest as deployed (each filter only on the routes that need it) against the same Envoy without the Wasm filters:\n");
    println!("| measure | baseline (no Wasm) | as deployed | ratio or cost | goal |");
    println!("| --- | --- | --- | --- | --- |");
    let kinds = [("gateway `GET /ipfs/...`", "native route", ">= 0.90"), ("the same read with an escape in its path", "router", "(for reference)")];
    for ((what, runs, goal), (rps, cpu)) in kinds.iter().zip(read_rps.iter().zip(&read_cpu)) {
        let [rb, rc] = rps.clone().map(|v| median(&v));
        println!("| {what} per second at saturation (4 keep-alive connections) | {rb:.0} | {rc:.0} ({runs}) | {:.3} | {goal} |", rc / rb);
        let [cb, cc] = cpu.clone().map(|v| median(&v));
        println!(
            "| Envoy CPU per read: {what} (us; its inverse is one worker's saturated throughput) | {cb:.1} | {cc:.1} ({runs}) | {:.3} (throughput ratio), {:+.1} us | {goal} |",
            cb / cc,
            cc - cb
        );
    }
    let [pb, pc] = probe_rps.map(|v| median(&v));
    println!("| health probes per second (`GET /`, a connection per probe) | {pb:.0} (`direct_response`) | {pc:.0} (health, router behind it) | {:.3} | >= 0.90 |", pc / pb);
    let [qb, qc] = probe_cpu.map(|v| median(&v));
    println!(
        "| Envoy CPU per health probe (us; its inverse is one worker's saturated throughput) | {qb:.1} (`direct_response`) | {qc:.1} (health, router behind it) | {:.3} (throughput ratio), {:+.1} us | >= 0.90 |",
        qb / qc,
        qc - qb
    );
    // The latency goals are the clean read's; the read with an escape is for reference.
    for (k, ((what, runs, _), (base, side))) in kinds.iter().zip([(&b3, &g), (&b4, &ge)]).enumerate() {
        for (name, sel, goal) in [("p50", 0, "<= 25 us"), ("p99", 1, "<= 40 us")] {
            let goal = if k == 0 { goal } else { "(for reference)" };
            println!(
                "| {what} latency {name} (us) | {:.1} | {:.1} ({runs}) | {:+.1} us | {goal} |",
                base.pooled[sel],
                side.pooled[sel],
                side.added(base)[sel]
            );
        }
    }
    println!("\n({samples} latency samples per side, {seconds} s per throughput round)");
}


/// `--router-builds A.wasm,B.wasm,...`: gateway reads the router decides (an
/// escape in the path) through the manifest as deployed with each router build in turn, against the same Envoy
/// without the Wasm filters: how a change to the router moves its cost.
fn router_builds(backend: u16, builds: &[&str], rounds: usize, seconds: u64, samples: usize, block: usize) {
    let ports = ["cluster_rest", "cluster_proxy", "kubo_rpc", "gateway"].map(|c| Patch::ClusterPort(c, backend));
    let base = Envoy::start_keeping(CONFIG, &[&ports[..], &[Patch::Manager("early_header_mutation_extensions", "[]")]].concat(), &[]);
    let envoys: Vec<Envoy> =
        builds.iter().map(|b| Envoy::start_keeping(CONFIG, &[&ports[..], &[Patch::FilterCode("router", (*b).into())]].concat(), &["router"])).collect();
    // With an escape, so that the router decides it (a clean read takes the native route).
    let read = gateway_read("edge", ESCAPED, false);
    let read_marked = gateway_read("edge", ESCAPED, true);
    let sides: Vec<(u16, &Vec<u8>)> = std::iter::once((base.port, &read_marked)).chain(envoys.iter().map(|e| (e.port, &read))).collect();
    for (port, req) in &sides {
        check(*port, req, 200, b"ok\n");
    }
    let all: Vec<&Envoy> = std::iter::once(&base).chain(&envoys).collect();
    let (mut rps, mut cpu) = (vec![Vec::new(); sides.len()], vec![Vec::new(); sides.len()]);
    for round in 0..rounds {
        // Each side first in turn.
        for k in 0..sides.len() {
            let i = (k + round) % sides.len();
            let (r, c) = throughput_cpu(all[i], sides[i].1, seconds, Conns::KeepAlive);
            rps[i].push(r);
            cpu[i].push(c);
        }
    }
    println!("router builds on gateway reads ({rounds} rounds, median); baseline = the same Envoy without the Wasm filters\n");
    println!("| build | reads per second | vs baseline | Envoy CPU per read (us) | CPU ratio (baseline / build) | latency p50 added (us) |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let (b, bc) = (median(&rps[0]), median(&cpu[0]));
    println!("| baseline (no Wasm) | {b:.0} | 1.000 | {bc:.1} | 1.000 | |");
    for (k, build) in builds.iter().enumerate() {
        let [base_l, l] = latency(&[sides[0], sides[k + 1]], samples, block);
        let (r, c) = (median(&rps[k + 1]), median(&cpu[k + 1]));
        println!("| {build} | {r:.0} | {:.3} | {c:.1} | {:.3} | +{:.1} |", r / b, bc / c, l.added(&base_l)[0]);
    }
}

/// `--auth`: the per-request cost of each kind of credential check.
fn auth(backend: u16, samples: usize) {
    use edge_logic::router::{auth::pbkdf2_phc, auth::base64_encode, bearer_digest};
    const TOKEN: &str = "Zk2u3Q0oV9yX1bC5dE7fG8hJ4kL6mN0pR2sT4uW6xY8";
    let salt = b"0123456789abcdef";
    let patches = |router: String| -> Vec<Patch> {
        ["cluster_rest", "cluster_proxy", "kubo_rpc", "gateway"]
            .into_iter()
            .map(|c| Patch::ClusterPort(c, backend))
            .chain([Patch::FilterConfig("router", router)])
            .collect()
    };
    let open = Envoy::start_keeping(CONFIG, &patches(r#"{"rpc": {"pin/add": "public"}}"#.into()), &["router"]);
    let creds = serde_json::json!({"credentials": {
        "bearer_tokens": [bearer_digest(TOKEN)],
        "basic": {
            "plain": "plain-password-1",
            "r1000": pbkdf2_phc("password-1", salt, 1_000),
            "r10000": pbkdf2_phc("password-1", salt, 10_000),
        },
    }});
    let guarded = Envoy::start_keeping(CONFIG, &patches(creds.to_string()), &["router"]);
    let req = |auth: Option<String>| -> Vec<u8> {
        let a = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        format!("POST /api/v0/pin/add?arg=QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\n{a}\r\n").into_bytes()
    };
    let basic = |u: &str, p: &str| Some(format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes())));
    let reqs = [
        req(None),
        req(Some(format!("Bearer {TOKEN}"))),
        req(basic("plain", "plain-password-1")),
        req(basic("r1000", "password-1")),
        req(basic("r10000", "password-1")),
    ];
    let [o, b, p, r1, r2] = latency(
        &[(open.port, &reqs[0]), (guarded.port, &reqs[1]), (guarded.port, &reqs[2]), (guarded.port, &reqs[3]), (guarded.port, &reqs[4])],
        samples,
        100,
    );
    println!("credential checks in router.wasm: POST /api/v0/pin/add, one request at a time; baseline = the same request opened to everyone\n");
    println!("| credential | p50 (us) | p99 (us) | added p50 | added p99 | p50 vs baseline |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!("| none (public) | {:.1} | {:.1} | | | 1.00 |", o.pooled[0], o.pooled[1]);
    for (name, l, base) in [
        ("Bearer, SHA-256 digest", &b, &o),
        ("Basic, plain-text password (SHA-256)", &p, &o),
        ("Basic, PBKDF2-HMAC-SHA256 1,000 rounds", &r1, &o),
        ("Basic, PBKDF2-HMAC-SHA256 10,000 rounds", &r2, &o),
    ] {
        let [a50, a99] = l.added(base);
        println!("| {name} | {:.1} | {:.1} | +{a50:.1} us | +{a99:.1} us | {:.2} |", l.pooled[0], l.pooled[1], l.pooled[0] / base.pooled[0]);
    }
    println!("\n({samples} samples per side)");
}

/// One side's latencies (us): [p50, p99] over all its samples, and per
/// turn.
struct Latency {
    pooled: [f64; 2],
    turns: Vec<[f64; 2]>,
}

impl Latency {
    /// What this side adds to `base`: the median over turns of the
    /// difference within each turn, so a burst of other work on the machine,
    /// which lands in one side's turn, does not count as that side's cost.
    fn added(&self, base: &Latency) -> [f64; 2] {
        [0, 1].map(|k| median(&self.turns.iter().zip(&base.turns).map(|(s, b)| s[k] - b[k]).collect::<Vec<_>>()))
    }
}

/// Each side's latency: one request at a time on one keep-alive connection
/// per side, the sides taking turns of `block` requests.
fn latency<const N: usize>(sides: &[(u16, &Vec<u8>); N], samples: usize, block: usize) -> [Latency; N] {
    let mut conns: Vec<Conn> = sides
        .iter()
        .map(|(port, req)| {
            check(*port, req, 200, b"ok\n");
            Conn::open(*port)
        })
        .collect();
    // Warm every path (connections to the backend, VM code).
    for _ in 0..2000 {
        for (c, (_, req)) in conns.iter_mut().zip(sides) {
            c.send(req);
        }
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let p50_p99 = |v: &mut [Duration]| [us(pct(v, 0.50)), us(pct(v, 0.99))];
    let mut all: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); N];
    let mut turns: Vec<Vec<[f64; 2]>> = vec![Vec::new(); N];
    while all[0].len() < samples {
        for (k, (c, (_, req))) in conns.iter_mut().zip(sides).enumerate() {
            let mut turn: Vec<Duration> = (0..block)
                .map(|_| {
                    let t = Instant::now();
                    c.send(req);
                    t.elapsed()
                })
                .collect();
            all[k].extend_from_slice(&turn);
            turns[k].push(p50_p99(&mut turn));
        }
    }
    std::array::from_fn(|k| Latency { pooled: p50_p99(&mut all[k]), turns: std::mem::take(&mut turns[k]) })
}

/// health.wasm's configuration in the manifest, and the one that makes it
/// idle: a path no request asks for.
const IDLE: &str = r#"{"paths": ["/never-asked"], "answer": "all"}"#;

/// health.wasm with only the SDK's bookkeeping exported, written beside the
/// built filters.
fn sdk_floor_wasm() -> std::path::PathBuf {
    let dir = e2e::wasm_dir();
    let built = std::fs::read(dir.join("health.wasm")).expect("health.wasm: run ./x build first");
    let floor = match edge_trim::trim(&built, &BTreeSet::new()) {
        Ok(Some(t)) => t.wasm,
        Ok(None) => built,
        Err(e) => panic!("health.wasm: {e}"),
    };
    let path = std::env::temp_dir().join(format!("edge-sdk-floor-{}.wasm", std::process::id()));
    std::fs::write(&path, floor).unwrap();
    path
}

fn check(port: u16, req: &[u8], status: u16, body: &[u8]) {
    let mut c = Conn::open(port);
    let (s, b) = c.send(req);
    assert_eq!((s, b.as_slice()), (status, body), "port {port}: {}", String::from_utf8_lossy(&b));
}

/// How the throughput clients connect.
#[derive(Clone, Copy, PartialEq)]
enum Conns {
    /// 4 keep-alive connections: Envoy's per-request work only, the
    /// harshest case for a filter.
    KeepAlive,
    /// A new connection per request with `Connection: close`, as
    /// load-balancer health checkers probe (kube-probe's transport sets
    /// `DisableKeepAlives`); 4 clients at a time.
    PerProbe,
}

/// Requests per second from 4 clients for `seconds`.
fn throughput(port: u16, req: &[u8], seconds: u64, conns: Conns) -> f64 {
    match conns {
        Conns::KeepAlive => count_for(seconds, || {
            let (mut c, req) = (Conn::open(port), req.to_vec());
            move || {
                c.send(&req);
            }
        }),
        Conns::PerProbe => {
            let req = String::from_utf8_lossy(req).replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1).into_bytes();
            count_for(seconds, || {
                let req = req.clone();
                move || {
                    Conn::open(port).send(&req);
                }
            })
        }
    }
}

/// Requests per second from 4 clients to `envoy` for `seconds` (on keep-alive
/// connections, or a connection per request), and Envoy's CPU time per
/// request (us). The CPU figure is
/// what one worker's saturated throughput is the inverse of, whatever the
/// clients and the backend, which share these cores, take of them.
fn throughput_cpu(envoy: &Envoy, req: &[u8], seconds: u64, conns: Conns) -> (f64, f64) {
    let cpu = envoy.cpu_secs();
    let t = Instant::now();
    let rps = throughput(envoy.port, req, seconds, conns);
    let n = rps * t.elapsed().as_secs_f64();
    (rps, (envoy.cpu_secs() - cpu) * 1e6 / n)
}

/// Runs a client made by `make` on each of 4 threads for `seconds`;
/// completed calls per second.
fn count_for<F: FnMut() + Send + 'static>(seconds: u64, make: impl Fn() -> F) -> f64 {
    let (n, secs) = e2e::load::run_for(seconds, (0..4).map(|_| make()).collect());
    n as f64 / secs
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// One keep-alive HTTP/1.1 connection; answers are read by their
/// `Content-Length` (Envoy sends one for these).
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).unwrap();
        Conn { r: BufReader::new(s.try_clone().unwrap()), w: s }
    }

    fn send(&mut self, req: &[u8]) -> (u16, Vec<u8>) {
        self.w.write_all(req).expect("send");
        let (line, len) = read_head(&mut self.r).expect("response head");
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).expect("body");
        (status, body)
    }
}
