//! `./x soak [--minutes N]`: the whole edge (manifests/envoy/envoy.yaml, all
//! three filters) in front of a local cluster of real Kubo and ipfs-cluster
//! peers, for N minutes (default 10) of mixed traffic while things break on
//! a schedule; then checks, prints figures, and exits non-zero when a check
//! fails. Not a CI test: it takes minutes (RELIABILITY.md has a run).
//!
//!   soak [--minutes N] [--peers N] [--adders N] [--memory-growth-mib N]
//!
//! Traffic, all through Envoy: adds (small, multi-MiB with progress,
//! directories, only-hash), gateway reads of what was added, REST reads,
//! health probes, the hostile corpus's refused requests, and clients that
//! give up mid-upload and mid-answer. Faults: the proxy's and the gateway's
//! answers broken mid-way and dribbled (the tests' fault-injecting tap), a
//! cluster peer killed (SIGKILL) and restarted, Kubo restarted (TERM) and
//! killed, the cluster peer behind the edge killed and restarted, Envoy
//! hot-restarted. Every daemon of peer 0 sits behind a recording tap, which
//! is how "no refused request reached a daemon" is proven.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::edge::{Proto, Req};
use e2e::envoy_config::{self, Patch};
use e2e::recorder::{Fault, Recorder};
use e2e::upload::{body, content, content_type, Entry};
use localcluster::{Cluster, Guarded};
use serde_json::Value;

const CORPUS: &str = include_str!("../../../../filters/logic/tests/corpus/hostile.jsonl");
const CORPUS_CONFIG: &str = include_str!("../../../../filters/logic/tests/corpus/router-config.json");
const TOKEN: &str = "corpus-token-0123456789";
/// Marks each hostile request, so the taps' records tell whether it got through.
const SOAK_ID: &str = "x-soak-id";

struct Args {
    minutes: f64,
    peers: usize,
    adders: usize,
    memory_growth_mib: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args { minutes: 10.0, peers: 3, adders: 3, memory_growth_mib: 64 };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut num = |what: &str| it.next().and_then(|n| n.parse::<f64>().ok()).filter(|n| *n > 0.0).ok_or(format!("{what} needs a positive number"));
        match x.as_str() {
            "--minutes" => a.minutes = num("--minutes")?,
            "--peers" => a.peers = (num("--peers")? as usize).max(3),
            "--adders" => a.adders = num("--adders")? as usize,
            "--memory-growth-mib" => a.memory_growth_mib = num("--memory-growth-mib")? as u64,
            "-h" | "--help" => {
                println!("soak [--minutes N (10)] [--peers N (3, at least 3)] [--adders N (3)] [--memory-growth-mib N (64)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}

/// Counts by kind ("add.big ok", "read cut", ...), and the first answers
/// of each kind that is not a success, with when they came.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>, Mutex<BTreeMap<String, Vec<String>>>, OnceStart);

struct OnceStart(Instant);

impl Default for OnceStart {
    fn default() -> OnceStart {
        OnceStart(Instant::now())
    }
}

impl Tally {
    fn bump(&self, k: impl Into<String>) {
        *self.0.lock().unwrap().entry(k.into()).or_default() += 1;
    }
    /// `bump`, keeping what came (its start) as a sample of the kind.
    fn bump_with(&self, k: impl Into<String>, what: &str) {
        let k = k.into();
        let mut samples = self.1.lock().unwrap();
        let v = samples.entry(k.clone()).or_default();
        if v.len() < 3 {
            let cut: String = what.chars().take(160).collect();
            v.push(format!("at {:.0} s: {cut:?}", self.2 .0.elapsed().as_secs_f64()));
        }
        drop(samples);
        self.bump(k);
    }
    fn samples(&self) -> BTreeMap<String, Vec<String>> {
        self.1.lock().unwrap().clone()
    }
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// What an add put where, enough to read it back: the files under the
/// CID, each as (path under it, length, content seed).
#[derive(Clone, Debug)]
struct Added {
    kind: &'static str,
    cid: String,
    files: Vec<(String, usize, u64)>,
}

#[derive(Default)]
struct Book {
    /// Adds whose client got the whole answer: 200, the final event, the
    /// end of the body, no X-Stream-Error.
    ok: Vec<Added>,
    /// Adds whose client got the final event, but not a good end (a
    /// stream error, or the answer cut after it): the client must take
    /// them for failures; checked only to say what became of them.
    doubtful: Vec<(Added, String)>,
    /// Only-hash adds: must pin nothing.
    only_hash: Vec<String>,
    /// Uploads abandoned mid-way (their CID from Kubo's only-hash): must
    /// pin nothing.
    abandoned: Vec<String>,
    /// Ids of the hostile requests the edge refused.
    refused: HashSet<u64>,
    /// Hostile requests answered otherwise than the corpus says.
    hostile_wrong: Vec<String>,
    /// Reads that came out complete but with other bytes.
    read_mismatch: Vec<String>,
    /// Health probes not answered 200.
    health_failed: Vec<String>,
}

struct World {
    edge: u16,
    kubo_rpc: u16,
    stop: AtomicBool,
    tally: Tally,
    book: Mutex<Book>,
    seq: AtomicU64,
    /// Requests sent, all kinds.
    sent: AtomicU64,
}

impl World {
    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
    fn ok_adds(&self) -> Vec<Added> {
        self.book.lock().unwrap().ok.clone()
    }
}

/// One HTTP/1.1 exchange with the edge (`Connection: close`), read to the
/// end. `Err` when nothing parseable came (the text says what did).
fn exchange(port: u16, req: &[u8], timeout: Duration) -> Result<e2e::http::Response, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let write = s.write_all(req);
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    match e2e::http::parse(&raw) {
        Some(r) => Ok(r),
        None if raw.is_empty() => Err(match (write, read) {
            (Err(e), _) => format!("write: {}", kind(&e)),
            (_, Err(e)) => format!("read: {}", kind(&e)),
            _ => "closed, no answer".into(),
        }),
        None => Err(format!("cut:{}", String::from_utf8_lossy(&raw))),
    }
}

fn kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

fn add_request(query: &str, entries: &[Entry]) -> Vec<u8> {
    let b = body(entries);
    let mut r = format!(
        "POST /api/v0/add{query} HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        content_type(),
        b.len()
    )
    .into_bytes();
    r.extend_from_slice(&b);
    r
}

/// The seed of a file's content: unique in the run, so no two adds share a CID.
fn seed(w: &World) -> u64 {
    0x9e37_79b9_7f4a_7c15 ^ (w.next() << 8) ^ u64::from(std::process::id())
}

fn adder(w: Arc<World>, me: u64) {
    let mut round = me;
    while w.running() {
        round += 1;
        let (kind, query, files): (&'static str, &str, Vec<(String, usize, u64)>) = match round % 6 {
            0 | 3 => ("small", "", vec![(format!("small-{round}.txt"), 64 + (seed(&w) % 65536) as usize, seed(&w))]),
            1 => ("big", "?progress=true", vec![(format!("big-{round}.bin"), (2 << 20) + (seed(&w) % (4 << 20)) as usize, seed(&w))]),
            2 | 5 => ("dir", "", vec![("a.txt".into(), 1 + (seed(&w) % 4000) as usize, seed(&w)), ("sub/b.bin".into(), 300_000 + (seed(&w) % 300_000) as usize, seed(&w))]),
            _ => ("only-hash", "?only-hash=true", vec![(format!("oh-{round}.txt"), 64 + (seed(&w) % 30000) as usize, seed(&w))]),
        };
        let datas: Vec<Vec<u8>> = files.iter().map(|(_, len, s)| content(*len, *s)).collect();
        let dir = format!("d-{me}-{round}");
        // The final event is the top-level entry's (a directory's comes after its files').
        let top = if kind == "dir" { dir.clone() } else { files[0].0.clone() };
        let req = if kind == "dir" {
            let paths: Vec<String> = files.iter().map(|(p, _, _)| format!("{dir}/{p}")).collect();
            let mut entries = vec![Entry::Dir(&dir)];
            for (p, d) in paths.iter().zip(&datas) {
                entries.push(Entry::File(p, d));
            }
            add_request(query, &entries)
        } else {
            add_request(query, &[Entry::File(&files[0].0, &datas[0])])
        };
        w.sent.fetch_add(1, Ordering::Relaxed);
        let r = exchange(w.edge, &req, Duration::from_secs(300));
        let tag = format!("add.{kind}");
        match r {
            Err(e) if e.starts_with("cut:") => {
                let text = &e[4..];
                let fin = text.lines().find_map(|l| final_hash(l, &top));
                match fin {
                    Some(cid) if kind != "only-hash" => {
                        w.tally.bump_with(format!("{tag} final event, then cut"), text.lines().last().unwrap_or(""));
                        let added = Added { kind, cid, files: files_under(kind, &files) };
                        w.book.lock().unwrap().doubtful.push((added, "cut after the final event".into()));
                    }
                    _ => w.tally.bump_with(format!("{tag} cut"), text.lines().last().unwrap_or("")),
                }
            }
            Err(e) => w.tally.bump_with(format!("{tag} {e}"), ""),
            Ok(r) if r.status != 200 => w.tally.bump_with(format!("{tag} status {}", r.status), &String::from_utf8_lossy(&r.body)),
            Ok(r) => {
                let fin = r.lines().iter().find_map(|l| final_hash(l, &top));
                let err = r.trailers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-stream-error")).map(|(_, v)| v.clone());
                match (fin, err) {
                    (None, _) => w.tally.bump(format!("{tag} no final event")),
                    (Some(cid), None) => {
                        w.tally.bump(format!("{tag} ok"));
                        let mut b = w.book.lock().unwrap();
                        if kind == "only-hash" {
                            b.only_hash.push(cid);
                        } else {
                            b.ok.push(Added { kind, cid, files: files_under(kind, &files) });
                        }
                    }
                    (Some(cid), Some(e)) => {
                        w.tally.bump(format!("{tag} final event + X-Stream-Error"));
                        if kind != "only-hash" {
                            w.book.lock().unwrap().doubtful.push((Added { kind, cid, files: files_under(kind, &files) }, e));
                        }
                    }
                }
            }
        }
    }
}

/// A directory's files are read under its CID; a file's is the CID itself.
fn files_under(kind: &str, files: &[(String, usize, u64)]) -> Vec<(String, usize, u64)> {
    if kind == "dir" {
        files.to_vec()
    } else {
        files.iter().map(|(_, l, s)| (String::new(), *l, *s)).collect()
    }
}

/// The `Hash` of the final add event of the top-level entry `top`
/// (progress events have none; the files of a directory have their own).
fn final_hash(line: &str, top: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v["Name"].as_str() != Some(top) {
        return None;
    }
    v["Hash"].as_str().map(str::to_string)
}

fn get(port: u16, target: &str, timeout: Duration) -> Result<e2e::http::Response, String> {
    exchange(port, format!("GET {target} HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n").as_bytes(), timeout)
}

/// Reads one file of `a` through the edge's gateway and compares it.
fn read_back(w: &World, a: &Added, i: usize) -> Result<(), String> {
    let (path, len, s) = &a.files[i];
    let target = if path.is_empty() { format!("/ipfs/{}", a.cid) } else { format!("/ipfs/{}/{path}", a.cid) };
    match get(w.edge, &target, Duration::from_secs(120)) {
        Err(e) if e.starts_with("cut:") => Err("cut".into()),
        Err(e) => Err(e),
        Ok(r) if r.status != 200 => Err(format!("status {}\t{}", r.status, String::from_utf8_lossy(&r.body))),
        Ok(r) if r.body == content(*len, *s) => Ok(()),
        Ok(r) => Err(format!("MISMATCH {target}: {} bytes, want {len}", r.body.len())),
    }
}

fn reader(w: Arc<World>, me: u64) {
    let mut n = me;
    while w.running() {
        let adds = w.ok_adds();
        if adds.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let a = &adds[(n >> 33) as usize % adds.len()];
        let i = (n >> 20) as usize % a.files.len();
        w.sent.fetch_add(1, Ordering::Relaxed);
        match read_back(&w, a, i) {
            Ok(()) => w.tally.bump("read ok"),
            Err(e) if e.starts_with("MISMATCH") => {
                w.tally.bump("read MISMATCH");
                w.book.lock().unwrap().read_mismatch.push(e);
            }
            Err(e) => match e.split_once('\t') {
                Some((k, body)) => w.tally.bump_with(format!("read {k}"), body),
                None => w.tally.bump(format!("read {e}")),
            },
        }
    }
}

fn rest_reader(w: Arc<World>) {
    let mut n = 0u64;
    while w.running() {
        n += 1;
        let adds = w.ok_adds();
        let target = match (n % 4, adds.last()) {
            (0, _) => "/id".to_string(),
            (1, _) => "/version".to_string(),
            (2, _) => "/peers".to_string(),
            (_, Some(a)) => format!("/pins/{}", a.cid),
            (_, None) => "/pins".to_string(),
        };
        w.sent.fetch_add(1, Ordering::Relaxed);
        match get(w.edge, &target, Duration::from_secs(60)) {
            Ok(r) if r.status == 200 => w.tally.bump("rest status 200"),
            Ok(r) => w.tally.bump_with(format!("rest status {}", r.status), &format!("{target}: {}", String::from_utf8_lossy(&r.body))),
            Err(e) if e.starts_with("cut:") => w.tally.bump("rest cut"),
            Err(e) => w.tally.bump(format!("rest {e}")),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn prober(w: Arc<World>) {
    let mut n = 0u64;
    while w.running() {
        n += 1;
        let method = if n % 3 == 0 { "HEAD" } else { "GET" };
        let req = Req::new(method, "/").header("User-Agent", "GoogleHC/1.0").over(if n % 5 == 0 { Proto::Http2 } else { Proto::Http11 });
        w.sent.fetch_add(1, Ordering::Relaxed);
        match e2e::edge::send(w.edge, &req) {
            Ok(a) if a.status == 200 => w.tally.bump("health 200"),
            Ok(a) => {
                w.tally.bump(format!("health status {}", a.status));
                w.book.lock().unwrap().health_failed.push(format!("{method} /: {}", a.status));
            }
            Err(e) => {
                w.tally.bump("health no answer");
                w.book.lock().unwrap().health_failed.push(format!("{method} /: {e}"));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The corpus's refused rows, each marked with a fresh id, round after
/// round: the edge must answer each with the corpus's status.
fn hostile(w: Arc<World>) {
    let rows: Vec<Value> = CORPUS.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("corpus row")).collect();
    let refused: Vec<&Value> = rows.iter().filter(|r| r["expect"].is_u64()).collect();
    let mut i = 0;
    while w.running() {
        let row = refused[i % refused.len()];
        i += 1;
        let id = w.next();
        let mut req = Req::new(row["method"].as_str().unwrap(), row["target"].as_str().unwrap()).over(Proto::parse(row["http"].as_str().unwrap()));
        for h in row["headers"].as_array().unwrap() {
            req = req.header(h[0].as_str().unwrap(), h[1].as_str().unwrap());
        }
        req = req.header(SOAK_ID, &id.to_string());
        let want = row.get("envoy").and_then(Value::as_u64).or(row["expect"].as_u64()).unwrap() as u16;
        w.sent.fetch_add(1, Ordering::Relaxed);
        w.book.lock().unwrap().refused.insert(id);
        match e2e::edge::send(w.edge, &req) {
            Ok(a) if a.status == want => w.tally.bump("hostile refused as the corpus says"),
            // Envoy's own codec may refuse an HTTP/2 row first, by a reset.
            Err(_) if row.get("envoy").is_some() || row["http"] == "2" => w.tally.bump("hostile refused by Envoy's codec"),
            other => {
                w.tally.bump("hostile WRONG answer");
                w.book.lock().unwrap().hostile_wrong.push(format!("{}: want {want}, got {:?}", row["id"], other.map(|a| a.status)));
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Clients that give up: an upload abandoned half-way (its CID from
/// Kubo's only-hash, asked directly, to check it pinned nothing), and a
/// gateway read dropped after its first bytes.
fn quitter(w: Arc<World>) {
    let mut n = 0u64;
    while w.running() {
        n += 1;
        w.sent.fetch_add(1, Ordering::Relaxed);
        if n % 2 == 1 {
            let data = content((1 << 20) + (seed(&w) % (2 << 20)) as usize, seed(&w));
            let name = format!("abandoned-{n}.bin");
            let req = add_request("?progress=true", &[Entry::File(&name, &data)]);
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", w.edge)) {
                let _ = s.write_all(&req[..req.len() / 2]);
                std::thread::sleep(Duration::from_millis(300));
            }
            w.tally.bump("quit mid-upload");
            let hashed = add_request("?only-hash=true", &[Entry::File(&name, &data)]);
            if let Ok(r) = exchange(w.kubo_rpc, &hashed, Duration::from_secs(60)) {
                if let Some(cid) = r.lines().iter().find_map(|l| final_hash(l, &name)) {
                    w.book.lock().unwrap().abandoned.push(cid);
                }
            }
        } else if let Some(a) = w.ok_adds().iter().rev().find(|a| a.kind == "big").cloned() {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", w.edge)) {
                let _ = s.write_all(format!("GET /ipfs/{} HTTP/1.1\r\nHost: edge.test\r\n\r\n", a.cid).as_bytes());
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.read(&mut buf);
            }
            w.tally.bump("quit mid-answer");
        }
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// Envoy on a fixed listener port, hot-restartable: each epoch a new
/// process, under a guard (no orphan when the soak dies), taking the
/// listener from the one before, which drains and exits.
struct HotEnvoy {
    cfg: PathBuf,
    dir: PathBuf,
    epochs: Vec<(Guarded, u16)>,
}

impl HotEnvoy {
    fn start(cfg: PathBuf, dir: PathBuf) -> Result<HotEnvoy, String> {
        let mut e = HotEnvoy { cfg, dir, epochs: Vec::new() };
        e.spawn()?;
        Ok(e)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let epoch = self.epochs.len();
        let admin_file = self.dir.join(format!("admin-{epoch}"));
        let base = self.dir.join("base-id");
        let bin = std::env::var("ENVOY_BIN").map_err(|_| "ENVOY_BIN is not set (source scripts/env.sh; ./x does)")?;
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(&self.cfg).args(["--concurrency", "1", "--log-level", "warn", "--drain-time-s", "10", "--parent-shutdown-time-s", "120"]);
        cmd.arg("--restart-epoch").arg(epoch.to_string()).arg("--admin-address-path").arg(&admin_file);
        if epoch == 0 {
            cmd.arg("--use-dynamic-base-id").arg("--base-id-path").arg(&base);
        } else {
            let id = std::fs::read_to_string(&base).map_err(|e| format!("{}: {e}", base.display()))?;
            cmd.arg("--base-id").arg(id.trim());
        }
        cmd.current_dir(e2e::repo_root());
        let log = self.dir.join(format!("envoy-{epoch}.log"));
        let g = Guarded::spawn(&format!("Envoy (epoch {epoch})"), cmd, &log).map_err(|e| e.to_string())?;
        let _ = std::fs::write(self.dir.join(format!("pid-{epoch}")), g.pid.to_string());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if !g.alive() {
                return Err(format!("Envoy epoch {epoch} exited; its log ({}):\n{}", log.display(), localcluster::tail(&log, 30)));
            }
            if let Some(admin) = std::fs::read_to_string(&admin_file).ok().and_then(|a| a.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok())) {
                if e2e::http::get(admin, "/ready").is_ok_and(|r| r.status == 200) {
                    self.epochs.push((g, admin));
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("Envoy epoch {epoch} not live in 90 s; its log ({}):\n{}", log.display(), localcluster::tail(&log, 30)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn admin(&self) -> u16 {
        self.epochs.last().unwrap().1
    }

    fn pid(&self) -> u32 {
        self.epochs.last().unwrap().0.pid
    }

    /// The admin's `/stats` as name → value (counters and gauges).
    fn stats(&self) -> HashMap<String, u64> {
        let Ok(r) = e2e::http::get(self.admin(), "/stats") else { return HashMap::new() };
        String::from_utf8_lossy(&r.body)
            .lines()
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(k, v)| v.trim().parse().ok().map(|v| (k.to_string(), v)))
            .collect()
    }

    fn logs(&self) -> String {
        (0..self.epochs.len()).map(|i| std::fs::read_to_string(self.dir.join(format!("envoy-{i}.log"))).unwrap_or_default()).collect()
    }
}

/// The Wasm counters that say a VM failed (FAIL_RELOAD replaces a failed
/// VM and counts it), as (name, value), non-zero ones only.
fn wasm_failures(stats: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = stats
        .iter()
        .filter(|(k, n)| k.starts_with("wasm.") && (k.ends_with(".vm_reload") || k.ends_with(".vm_reload_failure") || k.contains("fail")) && !k.contains("remote_load") && **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    v.sort();
    v
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// manifests/envoy/envoy.yaml in front of the taps, its listener on `port`.
fn envoy_config(port: u16, taps: &[(&'static str, &Recorder)], dir: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(e2e::repo_root().join(e2e::edge::CONFIG)).map_err(|e| e.to_string())?;
    let mut patches: Vec<Patch> = taps.iter().map(|(c, t)| Patch::ClusterPort(c, t.port())).collect();
    let router = serde_json::from_str::<Value>(CORPUS_CONFIG).map_err(|e| e.to_string())?.to_string();
    patches.push(Patch::FilterConfig("router", router));
    let edited = envoy_config::edit(&text, &patches, &["*"], &e2e::wasm_dir())?;
    // A hot restart hands the listener over by its address: a fixed port.
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&edited).map_err(|e| e.to_string())?;
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = serde_yaml_ng::Value::from(port);
    let f = dir.join("envoy.yaml");
    std::fs::write(&f, serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok(f)
}

fn say(start: Instant, what: &str) {
    eprintln!("[{:>6.1} s] {what}", start.elapsed().as_secs_f64());
}

fn run() -> Result<bool, String> {
    let a = args()?;
    let total = Duration::from_secs_f64(a.minutes * 60.0);
    let wasm = e2e::wasm_dir();
    if !wasm.join("add_response.wasm").exists() {
        return Err(format!("no {} (./x build makes it)", wasm.join("add_response.wasm").display()));
    }
    let dir = std::env::temp_dir().join(format!("ipfs-edge-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let t0 = Instant::now();
    say(t0, &format!("local cluster: {} peers", a.peers));
    let mut cluster: Cluster = localcluster::start(a.peers).map_err(|e| e.to_string())?;
    let p0 = cluster.peers[0].clone();
    let taps = [
        ("cluster_proxy", Recorder::streaming_tap("proxy", p0.proxy())),
        ("kubo_rpc", Recorder::streaming_tap("kubo", p0.kubo_rpc())),
        ("cluster_rest", Recorder::streaming_tap("rest", p0.rest())),
        ("gateway", Recorder::streaming_tap("gateway", p0.gateway())),
    ];
    let tap = |c: &str| &taps.iter().find(|(n, _)| *n == c).unwrap().1;
    let port = free_port();
    let cfg = envoy_config(port, &taps.iter().map(|(c, t)| (*c, t)).collect::<Vec<_>>(), &dir)?;
    let mut envoy = HotEnvoy::start(cfg, dir.clone())?;
    say(t0, &format!("Envoy on 127.0.0.1:{port} (admin {}), {} of traffic and faults", envoy.admin(), fmt_dur(total)));

    let w = Arc::new(World {
        edge: port,
        kubo_rpc: p0.ports.kubo_rpc,
        stop: AtomicBool::new(false),
        tally: Tally::default(),
        book: Mutex::new(Book::default()),
        seq: AtomicU64::new(1),
        sent: AtomicU64::new(0),
    });
    let mut threads = Vec::new();
    for i in 0..a.adders as u64 {
        let w = w.clone();
        threads.push(std::thread::spawn(move || adder(w, i * 1000)));
    }
    for i in 0..2 {
        let w = w.clone();
        threads.push(std::thread::spawn(move || reader(w, i + 7)));
    }
    for f in [rest_reader as fn(Arc<World>), prober, hostile, quitter] {
        let w = w.clone();
        threads.push(std::thread::spawn(move || f(w)));
    }

    // Envoy's memory once traffic runs, as the start figure.
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(20).min(total / 10));
    let rss_start = e2e::envoy::rss_of(envoy.pid());
    let alloc_start = envoy.stats().get("server.memory_allocated").copied().unwrap_or(0);
    say(t0, &format!("Envoy at start: RSS {:.1} MiB, allocated {:.1} MiB", mib(rss_start), mib(alloc_start)));

    // Envoy's memory every 30 s, whichever epoch serves.
    let series: Arc<Mutex<Vec<String>>> = Arc::default();
    let sampler = {
        let (w, series, admin_dir) = (w.clone(), series.clone(), dir.clone());
        std::thread::spawn(move || {
            let mut next = Instant::now();
            while w.running() {
                if Instant::now() >= next {
                    next += Duration::from_secs(30);
                    // The newest epoch: the highest admin file that answers.
                    for epoch in (0..4).rev() {
                        let Ok(a) = std::fs::read_to_string(admin_dir.join(format!("admin-{epoch}"))) else { continue };
                        let Some(port) = a.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else { continue };
                        let Ok(r) = e2e::http::get(port, "/stats?filter=server.memory_allocated") else { continue };
                        let text = String::from_utf8_lossy(&r.body).into_owned();
                        let val = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
                        let pid = std::fs::read_to_string(admin_dir.join(format!("pid-{epoch}"))).ok().and_then(|p| p.trim().parse::<u32>().ok()).unwrap_or(0);
                        series.lock().unwrap().push(format!(
                            "{:>5.0} s  epoch {epoch}: RSS {:.1} MiB, allocated {:.1} MiB",
                            start.elapsed().as_secs_f64(),
                            mib(e2e::envoy::rss_of(pid)),
                            mib(val("server.memory_allocated: "))
                        ));
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    // The schedule, as fractions of the run; the last tenth is quiet.
    let at = |f: f64| start + total.mul_f64(f);
    let wait_until = |t: Instant| {
        let now = Instant::now();
        if t > now {
            std::thread::sleep(t - now);
        }
    };
    let mut faults: Vec<String> = Vec::new();
    let note = |what: String, faults: &mut Vec<String>| {
        say(t0, &what);
        faults.push(format!("{:>5.0} s  {what}", start.elapsed().as_secs_f64()));
    };

    wait_until(at(0.08));
    tap("cluster_proxy").set_fault(Fault::CutAfter(700));
    tap("gateway").set_fault(Fault::CutAfter(3000));
    note("fault: the cluster proxy's and the gateway's answers broken mid-way (connection closed after 700 / 3000 bytes) for 15 s".into(), &mut faults);
    std::thread::sleep(Duration::from_secs(15));
    tap("cluster_proxy").set_fault(Fault::None);
    tap("gateway").set_fault(Fault::None);

    wait_until(at(0.15));
    cluster.kill_service(1, "KILL");
    note("fault: peer 1's ipfs-cluster-service killed (SIGKILL)".into(), &mut faults);
    wait_until(at(0.25));
    let t = Instant::now();
    cluster.start_service(1).map_err(|e| e.to_string())?;
    note(format!("peer 1's ipfs-cluster-service restarted (all peers see each other after {:.1} s)", t.elapsed().as_secs_f64()), &mut faults);

    wait_until(at(0.35));
    cluster.kill_kubo(0, "TERM");
    let t = Instant::now();
    cluster.start_kubo(0).map_err(|e| e.to_string())?;
    note(format!("fault: peer 0's Kubo restarted (TERM, started again: answering after {:.1} s)", t.elapsed().as_secs_f64()), &mut faults);

    wait_until(at(0.45));
    cluster.kill_service(0, "KILL");
    note("fault: peer 0's ipfs-cluster-service (behind the edge) killed (SIGKILL)".into(), &mut faults);
    std::thread::sleep(Duration::from_secs(15));
    let t = Instant::now();
    cluster.start_service(0).map_err(|e| e.to_string())?;
    note(format!("peer 0's ipfs-cluster-service restarted after 15 s down ({:.1} s to rejoin)", t.elapsed().as_secs_f64()), &mut faults);

    wait_until(at(0.6));
    let parent = envoy.stats();
    let wasm_before_restart = wasm_failures(&parent);
    let rss_parent = e2e::envoy::rss_of(envoy.pid());
    let t = Instant::now();
    envoy.spawn()?;
    note(
        format!(
            "fault: Envoy hot-restarted (epoch 1 live after {:.1} s; epoch 0 had RSS {:.1} MiB, drains 10 s, exits within 120 s)",
            t.elapsed().as_secs_f64(),
            mib(rss_parent)
        ),
        &mut faults,
    );

    wait_until(at(0.75));
    cluster.kill_kubo(2, "KILL");
    note("fault: peer 2's Kubo killed (SIGKILL)".into(), &mut faults);
    std::thread::sleep(Duration::from_secs(10));
    cluster.start_kubo(2).map_err(|e| e.to_string())?;
    note("peer 2's Kubo started again after 10 s".into(), &mut faults);

    wait_until(at(0.82));
    tap("cluster_proxy").set_fault(Fault::Dribble);
    note("fault: the cluster proxy's answers dribbled (1-300 byte pieces) for 15 s".into(), &mut faults);
    std::thread::sleep(Duration::from_secs(15));
    tap("cluster_proxy").set_fault(Fault::None);

    wait_until(at(1.0));
    w.stop.store(true, Ordering::SeqCst);
    say(t0, "traffic stopped; waiting for the clients in flight");
    for t in threads {
        let _ = t.join();
    }
    let _ = sampler.join();
    let elapsed = start.elapsed();
    let rss_end = e2e::envoy::rss_of(envoy.pid());
    let end_stats = envoy.stats();
    let alloc_end = end_stats.get("server.memory_allocated").copied().unwrap_or(0);

    // The checks.
    let mut failed: Vec<String> = Vec::new();
    let book = std::mem::take(&mut *w.book.lock().unwrap());
    say(t0, &format!("checking {} adds against the cluster's /pins and the gateway", book.ok.len()));
    let pins = pin_set(&cluster)?;
    let mut lost = Vec::new();
    let mut unreadable = Vec::new();
    for a in &book.ok {
        if !pins.contains_key(&a.cid) {
            lost.push(format!("{} {} not pinned", a.kind, a.cid));
        }
        for i in 0..a.files.len() {
            // A read may meet a daemon still settling: three tries.
            let r = (0..3).map(|_| read_back(&w, a, i)).find(|r| r.is_ok()).unwrap_or_else(|| read_back(&w, a, i));
            if let Err(e) = r {
                let e = e.replace('\t', ": ");
                unreadable.push(format!("{} {} file {i}: {e}", a.kind, a.cid));
            }
        }
    }
    let all_pinned = book.ok.iter().filter(|a| pins.get(&a.cid).is_some_and(|s| s.iter().all(|s| s.ends_with(" pinned")))).count();
    let doubtful_pinned = book.doubtful.iter().filter(|(a, _)| pins.contains_key(&a.cid)).count();
    let oh_pinned: Vec<&String> = book.only_hash.iter().filter(|c| pins.contains_key(*c)).collect();
    let abandoned_pinned: Vec<&String> = book.abandoned.iter().filter(|c| pins.contains_key(*c)).collect();
    let mut leaked = Vec::new();
    let mut seen_total = 0;
    for (_, t) in &taps {
        for s in t.take() {
            seen_total += 1;
            if let Some(id) = s.header(SOAK_ID).and_then(|v| v.parse::<u64>().ok()) {
                if book.refused.contains(&id) {
                    leaked.push(format!("{} {} reached {}", s.method, s.target, t.name()));
                }
            }
        }
    }
    let wasm_end = wasm_failures(&end_stats);
    let logs = envoy.logs();
    let vm_log: Vec<&str> = logs.lines().filter(|l| l.contains("wasm") && (l.contains("failed") || l.contains("panicked") || l.contains("unreachable"))).take(10).collect();
    let growth = rss_end.saturating_sub(rss_start);

    let mut check = |ok: bool, what: String| {
        println!("  [{}] {what}", if ok { " ok " } else { "FAIL" });
        if !ok {
            failed.push(what);
        }
    };
    println!("\nsoak: {} of traffic with faults, {} peers, Envoy on 127.0.0.1:{port}\n", fmt_dur(elapsed), a.peers);
    println!("faults, in order:");
    for f in &faults {
        println!("  {f}");
    }
    println!("\nchecks:");
    check(lost.is_empty(), format!("every add whose client got the whole answer is pinned on the cluster: {} of {}", book.ok.len() - lost.len(), book.ok.len()));
    for l in lost.iter().take(10) {
        println!("         {l}");
    }
    check(unreadable.is_empty(), format!("and reads back byte for byte through the edge's gateway: {} files unreadable", unreadable.len()));
    for l in unreadable.iter().take(10) {
        println!("         {l}");
    }
    check(book.read_mismatch.is_empty(), format!("no read during the run came out complete with other bytes: {} did", book.read_mismatch.len()));
    check(oh_pinned.is_empty(), format!("only-hash adds pinned nothing: {} of {} pinned", oh_pinned.len(), book.only_hash.len()));
    check(abandoned_pinned.is_empty(), format!("uploads abandoned mid-way pinned nothing: {} of {} pinned", abandoned_pinned.len(), book.abandoned.len()));
    check(leaked.is_empty(), format!("no refused request reached a daemon: {} of {} refused did ({seen_total} requests reached peer 0's daemons)", leaked.len(), book.refused.len()));
    for l in leaked.iter().take(10) {
        println!("         {l}");
    }
    check(book.hostile_wrong.is_empty(), format!("every hostile request got the corpus's answer: {} did not", book.hostile_wrong.len()));
    for l in book.hostile_wrong.iter().take(10) {
        println!("         {l}");
    }
    check(book.health_failed.is_empty(), format!("every health probe got 200 (passive health never asks a backend): {} did not", book.health_failed.len()));
    for l in book.health_failed.iter().take(10) {
        println!("         {l}");
    }
    check(
        wasm_before_restart.is_empty() && wasm_end.is_empty() && vm_log.is_empty(),
        format!("no Wasm VM failed (wasm.*.vm_reload* before the hot restart {wasm_before_restart:?}, at the end {wasm_end:?}; Envoy log lines: {})", vm_log.len()),
    );
    for l in &vm_log {
        println!("         {l}");
    }
    check(
        growth <= a.memory_growth_mib << 20,
        format!(
            "Envoy's memory at the end within {} MiB of its start: RSS {:.1} -> {:.1} MiB (allocated {:.1} -> {:.1} MiB)",
            a.memory_growth_mib,
            mib(rss_start),
            mib(rss_end),
            mib(alloc_start),
            mib(alloc_end)
        ),
    );
    println!("\nEnvoy's memory during the run:");
    for l in series.lock().unwrap().iter() {
        println!("  {l}");
    }
    println!("\nfigures:");
    let sent = w.sent.load(Ordering::Relaxed);
    println!("  {sent} requests in {:.0} s: {:.1} requests/s through the edge", elapsed.as_secs_f64(), sent as f64 / elapsed.as_secs_f64());
    println!(
        "  adds: {} whole ({} pinned on every peer at the end), {} with the final event but no good end ({} of them pinned), {} only-hash, {} abandoned",
        book.ok.len(),
        all_pinned,
        book.doubtful.len(),
        doubtful_pinned,
        book.only_hash.len(),
        book.abandoned.len()
    );
    let mut partial: BTreeMap<String, usize> = BTreeMap::new();
    for a in &book.ok {
        if let Some(st) = pins.get(&a.cid).filter(|s| !s.iter().all(|s| s.ends_with(" pinned"))) {
            let mut st = st.clone();
            st.sort();
            *partial.entry(st.join(", ")).or_default() += 1;
        }
    }
    for (st, n) in partial {
        println!("    {n} x not pinned on every peer: {st}");
    }
    let mut why: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, e) in &book.doubtful {
        *why.entry(e.as_str()).or_default() += 1;
    }
    for (e, n) in why {
        println!("    {n} x {e}");
    }
    println!("  outcomes by kind:");
    for (k, n) in w.tally.snapshot() {
        println!("    {n:>7}  {k}");
    }
    println!("  answers other than success, first of each kind:");
    for (k, v) in w.tally.samples() {
        for x in v {
            println!("    {k}: {x}");
        }
    }
    if failed.is_empty() {
        println!("\nsoak: every check passed");
    } else {
        println!("\nsoak: {} check(s) failed; Envoy's logs in {}", failed.len(), &dir.display());
    }
    drop(envoy);
    drop(cluster);
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(failed.is_empty())
}

/// The cluster's pin set with each peer's status, from the REST API of a
/// peer (the first that answers).
fn pin_set(c: &Cluster) -> Result<HashMap<String, Vec<String>>, String> {
    for p in &c.peers {
        let Ok((200, b)) = localcluster::http(p.rest(), "GET", "/pins", None) else { continue };
        return Ok(localcluster::json_values(&b)
            .into_iter()
            .filter_map(|v| {
                let cid = v["cid"].as_str()?.to_string();
                let st = v["peer_map"]
                    .as_object()
                    .map(|m| m.values().map(|s| format!("{} {}", s["peername"].as_str().unwrap_or("?"), s["status"].as_str().unwrap_or(""))).collect())
                    .unwrap_or_default();
                Some((cid, st))
            })
            .collect());
    }
    Err("no peer's REST API answered /pins".into())
}

fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
