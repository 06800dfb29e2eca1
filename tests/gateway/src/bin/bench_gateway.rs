//! `cargo run --release -p gateway --bin bench_gateway -- [--rounds N] [--seconds S] [--requests N] [--escaped] [--health-config FILE]`:
//! the edge's per-request cost on the Envoy that the real Envoy Gateway generates from
//! `deployer render`'s objects (standalone mode, as tests/gateway runs it), against the same
//! objects without the EnvoyExtensionPolicies, measured in the same run (BENCHMARKS.md, "The
//! generated chain").
//!
//! - side A: the rendered objects as they are (the router and add_response, each on the
//!   routes its policy names; the probes route, or with `--health-config` naming active mode
//!   or `answer: agents`, the health filter: `deployer render --health-config FILE`);
//! - side B, the baseline: the same objects without the EnvoyExtensionPolicies, and without
//!   the probes route (which would give side B's probe Envoy's own 200 too). Nothing marks
//!   a request there, so the client sends the router's mark itself (the rendered gateway rule
//!   matches `x-ipfs-edge-backend: gateway`), and the ClientTrafficPolicy's early removal of a
//!   client's mark is dropped on this side only (with it, the mark is gone before routing and
//!   a read meets the catch-all rule without a backend).
//!
//! Every Backend is one local keep-alive server answering `200 ok` (`e2e::ok_backend`).
//! Envoy Gateway's ports are fixed, so one side runs at a time: each round starts A,
//! measures, stops it, starts B, measures, stops it, the order turning each round.
//! Per side and round, over TLS (the HTTPS listener, the test CA, keep-alive connections
//! whose handshake is outside the timed part):
//! 1. gateway `GET /ipfs/<cid>/readme` per second from 4 clients at saturation, and Envoy's
//!    CPU time per request. Such a clean read takes the native read route on both sides (no
//!    filter runs on it); with `--escaped` the read is `.../read%20me`, which the router
//!    decides on side A (and side B's client marks): what every request but a clean read
//!    pays;
//! 2. one request at a time on one connection: p50 and p99 (the sides cannot take turns
//!    within a round, so the figure is the median over rounds of the round's difference);
//! 3. health probes on the HTTP listener (plain text, a connection per probe, `GoogleHC/1.0`),
//!    per second and in Envoy's CPU time per probe:
//!    A's answer (Envoy's own direct response on the probes route, or the health filter)
//!    against B's answer to the same request, the rendered redirect to HTTPS (`301`), Envoy's
//!    own answer without a backend.
//!
//! Then, once, both sides up at once, B in a second network namespace (its own loopback, so
//! Envoy Gateway's fixed ports are free there; its own backend and filter server), for what
//! one side at a time cannot measure well: 4. the latency of (2), the sides taking turns of
//! 1,000 reads as in bench_edge; the added latency is the median over turns of the
//! difference within a turn (a side's p50 otherwise follows the machine's state during its
//! turn more than the side).
//!
//! Needs a network and mount namespace of its own (root, or unprivileged user namespaces),
//! `./x setup` and `./x build`, as `cargo test -p gateway`.

use e2e::load::{gateway_read, CLEAN, ESCAPED};
use e2e::ok_backend::{self, read_head};
use gateway::eg::EnvoyGateway;
use gateway::files::FileServer;
use gateway::render;
use gateway::tls;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAIN: &str = "edge.test";
/// The router's header (filters/router), which the rendered routes match.
const MARK: &str = "x-ipfs-edge-backend";
const CLIENTS: usize = 4;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Side {
    /// As rendered.
    Edge,
    /// Without the EnvoyExtensionPolicies.
    Base,
}

struct Requests {
    /// Side A's gateway read.
    read: Vec<u8>,
    /// Side B's: the same (a clean read takes the native read route on both sides), or, with
    /// `--escaped`, the same with the router's mark.
    read_base: Vec<u8>,
    /// `--escaped`: the reads have an escape in their path, so the router decides them.
    escaped: bool,
    probe: Vec<u8>,
}

/// One side's figures of one round.
#[derive(Default, Clone)]
struct Figures {
    rps: f64,
    cpu_us: f64,
    p50: f64,
    p99: f64,
    probes: f64,
    probe_cpu_us: f64,
}

fn main() {
    // Before any thread: unshare needs a single-threaded process.
    if let Err(e) = gateway::ns::enter() {
        eprintln!("bench_gateway needs a network and mount namespace of its own: {e}");
        std::process::exit(1);
    }
    // A second network namespace for the baseline of the last phase (both sides up at once,
    // each on Envoy Gateway's fixed ports in a namespace of its own); made now, while the
    // process has one thread. The mount namespace (and /etc/hosts) stays shared.
    let (ns_a, ns_b) = second_netns().unwrap_or_else(|e| {
        eprintln!("bench_gateway: a second network namespace: {e}");
        std::process::exit(1);
    });
    let args: Vec<String> = std::env::args().collect();
    let rounds = arg(&args, "--rounds", 3).max(1) as usize;
    let seconds = arg(&args, "--seconds", 3);
    let samples = arg(&args, "--requests", 10_000).max(100) as usize;

    let dir = std::env::temp_dir().join(format!("edge-bench-gateway-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let health_config = args.iter().position(|a| a == "--health-config").and_then(|i| args.get(i + 1));
    let rendered = match health_config {
        Some(f) => render::render_with(DOMAIN, &dir.join("rendered"), &["--health-config".as_ref(), std::ffi::OsStr::new(f)]),
        None => render::render(DOMAIN, &dir.join("rendered")),
    };
    // Who answers side A's probes: Envoy itself (the probes route), or the health filter.
    let probes_route = render::probes_route();
    let prober = if rendered.iter().any(|o| render::kind(o) == "HTTPRoute" && render::name(o) == probes_route) {
        "Envoy's direct response"
    } else {
        "health.wasm"
    };
    let backend = SocketAddr::from((Ipv4Addr::LOCALHOST, ok_backend::spawn()));
    let eg_objects = render::for_envoy_gateway(&rendered);
    let mut objects = render::with_backends(&eg_objects, &|_| Some(backend));
    let (secrets, ca) = render::tls_secrets(&objects, &dir);
    objects.extend(secrets.clone());
    let files = gateway::files::serve_rendered(&rendered);
    let files_addr = files.addr;

    let edge_objects = objects.clone();
    let base_objects = without_filters(&objects, &probes_route);
    let ports = [render::port("PORT_HTTP"), render::port("PORT_HTTPS")];
    let https = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[1]));
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0]));
    let cfg = tls::client_config(&ca, &["http/1.1"]);
    let escaped = args.iter().any(|a| a == "--escaped");
    // `--escaped`: a read the router decides as rendered, so the baseline's client marks it.
    let segment = if escaped { ESCAPED } else { CLEAN };
    let reqs = Requests {
        read: gateway_read(DOMAIN, segment, false),
        read_base: gateway_read(DOMAIN, segment, escaped),
        escaped,
        probe: format!("GET / HTTP/1.1\r\nHost: {DOMAIN}\r\nUser-Agent: GoogleHC/1.0\r\nConnection: close\r\n\r\n").into_bytes(),
    };

    let mut figures: [Vec<Figures>; 2] = [Vec::new(), Vec::new()];
    let mut base_probe_answer = String::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [Side::Edge, Side::Base] } else { [Side::Base, Side::Edge] };
        for side in order {
            let objs = if side == Side::Edge { &edge_objects } else { &base_objects };
            let eg = EnvoyGateway::start(objs, &ports).unwrap_or_else(|e| panic!("Envoy Gateway ({side:?}):\n{e}"));
            let pid = envoy_pid(&eg);
            let (read, probe_status) = ready(side, &reqs, https, http, &cfg, &eg);
            if side == Side::Base {
                base_probe_answer = probe_status;
            }
            let f = measure(pid, read, &reqs.probe, https, http, &cfg, seconds, samples);
            eprintln!(
                "round {} {side:?}: {:.0} reads/s, {:.1} us CPU/read, p50 {:.1} us, p99 {:.1} us, {:.0} probes/s, {:.1} us CPU/probe",
                round + 1,
                f.rps,
                f.cpu_us,
                f.p50,
                f.p99,
                f.probes,
                f.probe_cpu_us
            );
            figures[side as usize].push(f);
            drop(eg);
        }
    }

    let med = |k: usize, f: fn(&Figures) -> f64| median(&figures[k].iter().map(f).collect::<Vec<_>>());
    let diff = |f: fn(&Figures) -> f64| median(&figures[0].iter().zip(&figures[1]).map(|(a, b)| f(a) - f(b)).collect::<Vec<_>>());
    println!(
        "\nthe generated chain: Envoy Gateway {} standalone on `deployer render`'s objects; {rounds} rounds, median; baseline = the same objects without the EnvoyExtensionPolicies\n",
        render::value("ENVOY_GATEWAY_VERSION")
    );
    println!("| measure | baseline (no policies) | as rendered | ratio or cost | goal |");
    println!("| --- | --- | --- | --- | --- |");
    let runs = if reqs.escaped { "router" } else { "native read route" };
    let what = if reqs.escaped { "gateway `GET /ipfs/...` with an escape (the router's)" } else { "gateway `GET /ipfs/...`" };
    let (rb, ra) = (med(1, |f| f.rps), med(0, |f| f.rps));
    println!("| {what} per second at saturation (TLS, {CLIENTS} keep-alive connections) | {rb:.0} | {ra:.0} ({runs}) | {:.3} | >= 0.90 |", ra / rb);
    let (cb, ca_) = (med(1, |f| f.cpu_us), med(0, |f| f.cpu_us));
    println!(
        "| Envoy CPU per read: {what} (us) | {cb:.1} | {ca_:.1} ({runs}) | {:.3} (baseline / rendered), {:+.1} us | >= 0.90 |",
        cb / ca_,
        ca_ - cb
    );
    for (name, sel, goal) in [("p50", (|f: &Figures| f.p50) as fn(&Figures) -> f64, "<= 25 us"), ("p99", |f: &Figures| f.p99, "<= 40 us")] {
        println!(
            "| {what} latency {name} (us; TLS, one connection, one request at a time) | {:.1} | {:.1} | {:+.1} us (median over rounds of the round's difference) | {goal} |",
            med(1, sel),
            med(0, sel),
            diff(sel)
        );
    }
    let (pb, pa) = (med(1, |f| f.probes), med(0, |f| f.probes));
    println!(
        "| health probes per second (`GET /` on the HTTP listener, a connection per probe) | {pb:.0} (`{base_probe_answer}`: the rendered redirect) | {pa:.0} ({prober}) | {:.3} | >= 0.90 |",
        pa / pb
    );
    let (qb, qa) = (med(1, |f| f.probe_cpu_us), med(0, |f| f.probe_cpu_us));
    println!(
        "| Envoy CPU per health probe (us; its inverse is the probes per second Envoy's own cores allow) | {qb:.1} (the rendered redirect) | {qa:.1} ({prober}) | {:.3} (baseline / rendered), {:+.1} us | >= 0.90 |",
        qb / qa,
        qa - qb
    );

    // 4. Latency with the sides taking turns (as bench_edge): A here, B in the second
    // namespace with a backend and filter server of its own, both up at once.
    const TURN: usize = 1000;
    let n_turns = samples.div_ceil(TURN);
    let edge = EnvoyGateway::start(&edge_objects, &ports).unwrap_or_else(|e| panic!("Envoy Gateway (Edge):\n{e}"));
    let (base, mut conn_b, _b_servers) = in_netns(&ns_b, || {
        let backend_b = SocketAddr::from((Ipv4Addr::LOCALHOST, ok_backend::spawn()));
        let files_b = FileServer::spawn(files_addr, e2e::wasm_dir()).expect("filter server (second namespace)");
        let mut objs = render::with_backends(&eg_objects, &|_| Some(backend_b));
        objs.extend(secrets.clone());
        let eg = EnvoyGateway::start(&without_filters(&objs, &probes_route), &ports).unwrap_or_else(|e| panic!("Envoy Gateway (Base, second namespace):\n{e}"));
        ready(Side::Base, &reqs, https, http, &cfg, &eg);
        let c: Vec<TlsConn> = (0..n_turns).map(|_| TlsConn::open(https, &cfg).expect("TLS connection (second namespace)")).collect();
        (eg, c, files_b)
    });
    let (read_a, _) = ready(Side::Edge, &reqs, https, http, &cfg, &edge);
    let mut conn_a: Vec<TlsConn> = (0..n_turns).map(|_| TlsConn::open(https, &cfg).expect("TLS connection")).collect();
    let _ = ns_a;
    let [la, lb] = turns([(&mut conn_a, read_a), (&mut conn_b, &reqs.read_base)], TURN);
    let p50s = |t: &[[f64; 2]]| t.iter().map(|x| format!("{:.0}", x[0])).collect::<Vec<_>>().join(" ");
    eprintln!("p50 per turn (us), as rendered: {}\np50 per turn (us), baseline:    {}", p50s(&la), p50s(&lb));
    println!("\nBoth sides up at once, each in a network namespace of its own, taking turns of {TURN} reads, a connection per turn (median over turns of the difference within a turn):\n");
    println!("| measure | baseline (no policies) | as rendered | added | goal |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, k, goal) in [("p50", 0, "<= 25 us"), ("p99", 1, "<= 40 us")] {
        let added = median(&la.iter().zip(&lb).map(|(a, b)| a[k] - b[k]).collect::<Vec<_>>());
        let pooled = |t: &[[f64; 2]]| median(&t.iter().map(|x| x[k]).collect::<Vec<_>>());
        println!("| {what} latency {name} (us; TLS, one connection per side) | {:.1} | {:.1} | {added:+.1} us | {goal} |", pooled(&lb), pooled(&la));
    }
    drop((edge, base));
    println!("\n({samples} latency samples per side and round, {seconds} s per throughput figure; {n_turns} turns of {TURN} per side)");
    if std::env::var_os("EDGE_GATEWAY_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_file(std::env::temp_dir().join(format!("edge-gateway-hosts-{}", std::process::id())));
}

/// Side B's objects: the EnvoyExtensionPolicies and the probes route (`probes`) with its
/// filter left out, and the ClientTrafficPolicy's early removal of the router's header
/// dropped so that the client's own mark routes the request (the router, which sets it on
/// side A after that removal, is not there).
fn without_filters(objects: &[Value], probes: &str) -> Vec<Value> {
    let left_out = |o: &Value| {
        matches!(render::kind(o), "EnvoyExtensionPolicy" | "HTTPRouteFilter") || (render::kind(o) == "HTTPRoute" && render::name(o) == probes)
    };
    let mut out: Vec<Value> = objects.iter().filter(|o| !left_out(o)).cloned().collect();
    let mut dropped = false;
    for p in out.iter_mut().filter(|o| render::kind(o) == "ClientTrafficPolicy") {
        let Some(remove) = p["spec"]["headers"]["earlyRequestHeaders"]["remove"].as_array_mut() else { continue };
        let before = remove.len();
        remove.retain(|h| !h.as_str().is_some_and(|h| h.eq_ignore_ascii_case(MARK)));
        dropped |= remove.len() != before;
        // Envoy Gateway refuses an empty `earlyRequestHeaders` (the whole policy, and with it
        // every route, becomes a 500): what is left empty goes.
        if remove.is_empty() {
            let headers = p["spec"]["headers"].as_object_mut().unwrap();
            let early = headers["earlyRequestHeaders"].as_object_mut().unwrap();
            early.remove("remove");
            if early.is_empty() {
                headers.remove("earlyRequestHeaders");
            }
            if headers.is_empty() {
                p["spec"].as_object_mut().unwrap().remove("headers");
            }
        }
    }
    // Without it there is nothing to drop, and the baseline would route the same way anyway.
    if !dropped {
        eprintln!("note: no ClientTrafficPolicy removes {MARK} early; the baseline is the objects without the policies alone");
    }
    out
}

/// The pid of the Envoy func-e started for this instance: its command line names the run's
/// directory (the Envoy binary is linked under it, `data/envoy-versions/...`).
fn envoy_pid(eg: &EnvoyGateway) -> u32 {
    let dir = eg.dir.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if comm.trim() == "envoy" && String::from_utf8_lossy(&cmd).contains(&dir) {
            found.push(pid);
        }
    }
    assert!(found.len() == 1, "Envoy processes of {dir}: {found:?}");
    found[0]
}

/// Waits until the side answers as it must (Envoy listens before every route and filter is in
/// place: the Wasm modules come after the listeners), and returns the read it is measured with
/// and the status line of its answer to a probe.
fn ready<'a>(side: Side, reqs: &'a Requests, https: SocketAddr, http: SocketAddr, cfg: &Arc<rustls::ClientConfig>, eg: &EnvoyGateway) -> (&'a [u8], String) {
    let read: &[u8] = if side == Side::Edge { &reqs.read } else { &reqs.read_base };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = TlsConn::open(https, cfg).map(|mut c| c.send(read));
        let p = probe(http, &reqs.probe);
        let read_ok = matches!(&r, Ok(Ok((200, b))) if b == ok_backend::BODY);
        let probe_ok = match (&p, side) {
            (Ok((line, body)), Side::Edge) => line.contains(" 200 ") && body.starts_with(b"{\"status\":\"ok\""),
            (Ok((line, _)), Side::Base) => line.contains(" 301 "),
            _ => false,
        };
        if read_ok && probe_ok {
            // With `--escaped`, side A's answer must be the router's doing: its unmarked read
            // reaches the backend, the same read does not on side B.
            if side == Side::Base && reqs.escaped {
                let unmarked = TlsConn::open(https, cfg).and_then(|mut c| c.send(&reqs.read));
                assert!(!matches!(&unmarked, Ok((200, b)) if b == ok_backend::BODY), "side B routes an unmarked read to a backend");
            }
            return (read, p.unwrap().0.trim_end().split_once(' ').map_or(String::new(), |(_, s)| s.to_string()));
        }
        assert!(Instant::now() < deadline, "{side:?} not ready after 60 s: read {r:?}, probe {p:?}\n{}", gateway::eg::tail(&eg.log(), 40));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(pid: u32, read: &[u8], probe_req: &[u8], https: SocketAddr, http: SocketAddr, cfg: &Arc<rustls::ClientConfig>, seconds: u64, samples: usize) -> Figures {
    // Warm: the connections to the backend, the VM's code.
    let mut c = TlsConn::open(https, cfg).expect("TLS connection");
    for _ in 0..2000 {
        c.send(read).expect("warm-up read");
    }
    // 1. Saturation, with Envoy's CPU time over the same span.
    let conns: Vec<TlsConn> = (0..CLIENTS).map(|_| TlsConn::open(https, cfg).expect("TLS connection")).collect();
    let cpu = e2e::envoy::cpu_secs_of(pid);
    let t = Instant::now();
    let n = count_for(seconds, conns, read);
    let elapsed = t.elapsed().as_secs_f64();
    let cpu_us = (e2e::envoy::cpu_secs_of(pid) - cpu) * 1e6 / n as f64;
    let rps = n as f64 / elapsed;
    // 2. One request at a time.
    let mut lat: Vec<Duration> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            c.send(read).expect("read");
            t.elapsed()
        })
        .collect();
    lat.sort();
    let us = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    // 3. Probes, a connection each.
    let cpu = e2e::envoy::cpu_secs_of(pid);
    let (n, secs) = probes_for(seconds, http, probe_req);
    let probe_cpu_us = (e2e::envoy::cpu_secs_of(pid) - cpu) * 1e6 / n as f64;
    Figures { rps, cpu_us, p50: us(0.50), p99: us(0.99), probes: n as f64 / secs, probe_cpu_us }
}

/// Requests completed on `conns` (one client thread each) in `seconds`.
fn count_for(seconds: u64, conns: Vec<TlsConn>, req: &[u8]) -> u64 {
    let clients = conns
        .into_iter()
        .map(|mut c| {
            let req = req.to_vec();
            move || {
                c.send(&req).expect("read at saturation");
            }
        })
        .collect();
    e2e::load::run_for(seconds, clients).0
}

/// Probes from `CLIENTS` threads, each probe on a new plain-text connection, for `seconds`:
/// (how many, over how many seconds).
fn probes_for(seconds: u64, http: SocketAddr, req: &[u8]) -> (u64, f64) {
    let clients = (0..CLIENTS)
        .map(|_| {
            let req = req.to_vec();
            move || {
                probe(http, &req).expect("probe");
            }
        })
        .collect();
    e2e::load::run_for(seconds, clients)
}

/// One probe on a connection of its own: (status line, body).
fn probe(http: SocketAddr, req: &[u8]) -> std::io::Result<(String, Vec<u8>)> {
    let s = TcpStream::connect(http)?;
    s.set_nodelay(true)?;
    (&s).write_all(req)?;
    let mut r = BufReader::new(s);
    let (line, len) = read_head(&mut r).ok_or_else(|| std::io::Error::other("no answer head"))?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok((line, body))
}

/// One keep-alive HTTP/1.1 connection over TLS, the handshake done when opened; answers
/// read by their `Content-Length` (Envoy sends one for these).
struct TlsConn {
    r: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl TlsConn {
    fn open(to: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsConn> {
        let name = ServerName::try_from(DOMAIN.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(std::io::Error::other)?;
        let mut sock = TcpStream::connect(to)?;
        sock.set_nodelay(true)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(TlsConn { r: BufReader::new(rustls::StreamOwned::new(conn, sock)) })
    }

    fn send(&mut self, req: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let s = self.r.get_mut();
        s.write_all(req)?;
        s.flush()?;
        let (line, len) = read_head(&mut self.r).ok_or_else(|| std::io::Error::other("no answer head"))?;
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body)?;
        Ok((status, body))
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

/// Each side's (p50, p99) per turn: one request at a time, the sides taking turns of
/// `block` requests, each turn on a connection of its own (opened beforehand, warmed
/// before its turn). Why a connection per turn: observed here, one request at a time a
/// side's p50 stays near 60 us or near 250 us for a whole turn on one connection, whichever
/// side it is (most likely where the connection's Envoy worker and the client thread run on
/// the VM's 2 cores); a fresh connection per turn draws again, and the median over turns
/// sees both sides alike.
fn turns(mut sides: [(&mut Vec<TlsConn>, &[u8]); 2], block: usize) -> [Vec<[f64; 2]>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    let n = sides[0].0.len().min(sides[1].0.len());
    for i in 0..n {
        for ((conns, req), o) in sides.iter_mut().zip(out.iter_mut()) {
            let c = &mut conns[i];
            for _ in 0..200 {
                c.send(req).expect("warm-up read");
            }
            let mut t: Vec<Duration> = (0..block)
                .map(|_| {
                    let t = Instant::now();
                    c.send(req).expect("read");
                    t.elapsed()
                })
                .collect();
            t.sort();
            let us = |p: f64| t[((t.len() as f64 * p) as usize).min(t.len() - 1)].as_secs_f64() * 1e6;
            o.push([us(0.50), us(0.99)]);
        }
    }
    out
}

/// The network namespace this process is in, and a new one (its loopback up) for other
/// threads to enter ([`in_netns`]). Must run while the process has one thread.
fn second_netns() -> Result<(std::fs::File, std::fs::File), String> {
    let here = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!("unshare(net): {}", std::io::Error::last_os_error()));
    }
    gateway::ns::loopback_up()?;
    let other = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;
    setns(&here)?;
    Ok((here, other))
}

fn setns(ns: &std::fs::File) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns(net): {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` on a thread in the network namespace `ns`: the sockets it opens and the threads
/// and processes it starts are there (a namespace is a thread's own; children inherit it).
fn in_netns<T: Send>(ns: &std::fs::File, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns).expect("enter the second network namespace");
            f()
        })
        .join()
        .unwrap()
    })
}
