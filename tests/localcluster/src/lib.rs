//! A local IPFS Cluster for the tests, the benchmarks and `./x run`: N peers,
//! each a real Kubo (`ipfs daemon`) and a real `ipfs-cluster-service` (CRDT
//! consensus), built by `scripts/daemons.sh` at the versions of
//! `manifests/kubernetes/values.env`, on loopback ports, with one generated
//! cluster secret and identities generated once per data directory.
//!
//! ```no_run
//! let cluster = localcluster::start(3).unwrap();
//! let proxy = cluster.peers[0].proxy(); // the cluster's IPFS proxy (as Kubo's RPC API)
//! drop(cluster); // stops every process it started and removes its temporary data
//! ```
//!
//! Every daemon runs under a small bash guard in a process group of its own
//! (so a terminal's Ctrl-C reaches only the owner): the guard holds the read
//! end of a pipe whose write end only this process has, and stops its daemon
//! (TERM, KILL after 5 s) when the pipe closes. The pipe closes on `Drop`, and
//! also when this process dies in any way (panic, Ctrl-C, SIGKILL), or when a
//! test binary ends with the cluster in a `static` (statics are never
//! dropped): no orphans either way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What went wrong, as a sentence naming what and where.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

/// The repository root (this crate is tests/localcluster).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The three programs.
#[derive(Debug, Clone)]
pub struct Bins {
    pub ipfs: PathBuf,
    pub service: PathBuf,
    pub ctl: PathBuf,
}

impl Bins {
    /// `IPFS_BIN`, `IPFS_CLUSTER_SERVICE_BIN`, `IPFS_CLUSTER_CTL_BIN` when all
    /// are set (`./x` sets them), else what `scripts/daemons.sh build` prints
    /// (it builds them the first time: minutes).
    pub fn locate() -> Result<Bins> {
        let keys = ["IPFS_BIN", "IPFS_CLUSTER_SERVICE_BIN", "IPFS_CLUSTER_CTL_BIN"];
        let mut vals: Vec<Option<PathBuf>> = keys.iter().map(|k| std::env::var_os(k).map(PathBuf::from)).collect();
        if vals.iter().any(Option::is_none) {
            let script = repo_root().join("scripts/daemons.sh");
            let out = Command::new(&script)
                .arg("build")
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| Error(format!("cannot run {}: {e}", script.display())))?;
            if !out.status.success() {
                return err(format!("{} build failed ({}): Kubo or ipfs-cluster did not build", script.display(), out.status));
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((k, v)) = line.split_once('=') {
                    if let Some(i) = keys.iter().position(|x| *x == k) {
                        vals[i] = Some(PathBuf::from(v));
                    }
                }
            }
        }
        let mut it = vals.into_iter().zip(keys).map(|(v, k)| match v {
            Some(p) if p.is_file() => Ok(p),
            Some(p) => err(format!("{k}: no program at {}", p.display())),
            None => err(format!("{k}: scripts/daemons.sh build did not name it")),
        });
        Ok(Bins { ipfs: it.next().unwrap()?, service: it.next().unwrap()?, ctl: it.next().unwrap()? })
    }
}

/// The loopback ports of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub kubo_rpc: u16,
    pub gateway: u16,
    pub kubo_swarm: u16,
    pub proxy: u16,
    pub rest: u16,
    pub cluster_swarm: u16,
    pub pinsvc: u16,
}

/// Ports to use instead of free ones (`None`: a free port).
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedPorts {
    pub kubo_rpc: Option<u16>,
    pub gateway: Option<u16>,
    pub proxy: Option<u16>,
    pub rest: Option<u16>,
}

pub struct Options {
    /// Number of peers (default 3).
    pub peers: usize,
    /// Data directory kept between runs (identities, secret, repositories);
    /// `None`: a temporary one, removed when the cluster stops.
    pub dir: Option<PathBuf>,
    /// Fixed ports for peer 0 (`./x run` puts it where envoy.yaml points).
    pub peer0: FixedPorts,
    /// How long the whole start may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { peers: 3, dir: None, peer0: FixedPorts::default(), timeout: Duration::from_secs(90) }
    }
}

/// One peer: its ports and identities.
#[derive(Debug, Clone)]
pub struct Peer {
    pub index: usize,
    pub dir: PathBuf,
    pub ports: Ports,
    pub kubo_id: String,
    pub cluster_id: String,
}

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Peer {
    /// Kubo's RPC API.
    pub fn kubo_rpc(&self) -> SocketAddr {
        lo(self.ports.kubo_rpc)
    }
    /// Kubo's gateway.
    pub fn gateway(&self) -> SocketAddr {
        lo(self.ports.gateway)
    }
    /// The cluster's IPFS proxy (Kubo's RPC API through the cluster).
    pub fn proxy(&self) -> SocketAddr {
        lo(self.ports.proxy)
    }
    /// The cluster's REST API.
    pub fn rest(&self) -> SocketAddr {
        lo(self.ports.rest)
    }
    fn kubo_dir(&self) -> PathBuf {
        self.dir.join("kubo")
    }
    fn cluster_dir(&self) -> PathBuf {
        self.dir.join("cluster")
    }
    /// Where each daemon logs.
    pub fn kubo_log(&self) -> PathBuf {
        self.dir.join("kubo.log")
    }
    pub fn cluster_log(&self) -> PathBuf {
        self.dir.join("cluster.log")
    }
}

/// A running local cluster. `Drop` stops it.
pub struct Cluster {
    pub peers: Vec<Peer>,
    pub bins: Bins,
    /// Per peer: its Kubo and its cluster peer (`None` when stopped).
    kubos: Vec<Option<Guarded>>,
    services: Vec<Option<Guarded>>,
    /// Per peer: how often its cluster peer was started again after it
    /// crashed while starting (`revive`).
    revived: Vec<u8>,
    tmp: Option<tempfile::TempDir>,
}

/// How often a cluster peer that crashes while starting is started again.
/// ipfs-cluster v1.1.6 now and then dies at start with a nil pointer in
/// go-libp2p-gorpc's `Client.makeCall`, a race inside the daemon that no
/// configuration avoids; on a cluster, Kubernetes restarts the container and
/// the peer comes up. The tests do the same, a bounded number of times, and
/// say so on standard error: a peer that keeps crashing still fails them.
const REVIVALS: u8 = 2;

/// `Options { peers: n, ..Default::default() }.start()`.
pub fn start(n: usize) -> Result<Cluster> {
    Options { peers: n, ..Options::default() }.start()
}

impl Options {
    pub fn start(self) -> Result<Cluster> {
        assert!(self.peers >= 1, "a cluster has at least one peer");
        let deadline = Instant::now() + self.timeout;
        let bins = Bins::locate()?;
        let (dir, tmp) = match &self.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Error(format!("cannot create data directory {}: {e}", d.display())))?;
                (d.clone(), None)
            }
            None => {
                let t = temp_dir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let secret = secret(&dir)?;
        let ports = choose_ports(self.peers, &self.peer0)?;
        let mut peers = Vec::new();
        for (i, ports) in ports.into_iter().enumerate() {
            let pdir = dir.join(format!("peer-{i}"));
            std::fs::create_dir_all(&pdir).map_err(|e| Error(format!("{}: {e}", pdir.display())))?;
            let mut peer = Peer { index: i, dir: pdir, ports, kubo_id: String::new(), cluster_id: String::new() };
            init_peer(&bins, &mut peer)?;
            peers.push(peer);
        }
        for p in &peers {
            configure_kubo(p, &peers)?;
            configure_cluster(p, &peers, &secret)?;
        }
        let n = peers.len();
        let mut cluster =
            Cluster { peers, bins, kubos: (0..n).map(|_| None).collect(), services: (0..n).map(|_| None).collect(), revived: vec![0; n], tmp };
        // On an error the half-started cluster is dropped: everything stops.
        cluster.start_all(deadline)?;
        Ok(cluster)
    }
}

/// A fresh directory under `$TMPDIR/ipfs-edge-localcluster/`, named after
/// this process; directories left by processes that are gone (a cluster kept
/// in a `static` is never dropped) are removed first.
fn temp_dir() -> Result<tempfile::TempDir> {
    let parent = std::env::temp_dir().join("ipfs-edge-localcluster");
    std::fs::create_dir_all(&parent).map_err(|e| Error(format!("{}: {e}", parent.display())))?;
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&parent)
        .map_err(|e| Error(format!("temporary directory in {}: {e}", parent.display())))
}

/// The cluster secret: 32 random bytes, hex, generated once per data directory.
fn secret(dir: &Path) -> Result<String> {
    let f = dir.join("secret");
    if let Ok(s) = std::fs::read_to_string(&f) {
        let s = s.trim().to_string();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s);
        }
    }
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut r| r.read_exact(&mut b)).map_err(|e| Error(format!("/dev/urandom: {e}")))?;
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    std::fs::write(&f, &s).map_err(|e| Error(format!("{}: {e}", f.display())))?;
    Ok(s)
}

/// Free loopback ports for every peer, and peer 0's fixed ones checked free.
/// The listeners are held until all are chosen, so no two are the same.
fn choose_ports(n: usize, fixed: &FixedPorts) -> Result<Vec<Ports>> {
    let mut held = Vec::new();
    let mut free = || -> Result<u16> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error(format!("no free loopback port: {e}")))?;
        let p = l.local_addr().unwrap().port();
        held.push(l);
        Ok(p)
    };
    let mut out = Vec::new();
    for i in 0..n {
        let mut pick = |f: Option<u16>, what: &str| -> Result<u16> {
            match f {
                Some(p) if i == 0 => match TcpListener::bind(("127.0.0.1", p)) {
                    Ok(_) => Ok(p),
                    Err(e) => err(format!(
                        "port {p} ({what} of peer 0) is in use on 127.0.0.1 ({e}): stop whatever listens there (`ss -ltnp 'sport = :{p}'`)"
                    )),
                },
                _ => free(),
            }
        };
        let kubo_rpc = pick(fixed.kubo_rpc, "Kubo RPC API")?;
        let gateway = pick(fixed.gateway, "Kubo gateway")?;
        let proxy = pick(fixed.proxy, "cluster IPFS proxy")?;
        let rest = pick(fixed.rest, "cluster REST API")?;
        out.push(Ports { kubo_rpc, gateway, proxy, rest, kubo_swarm: free()?, cluster_swarm: free()?, pinsvc: free()? });
    }
    Ok(out)
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().map_err(|e| Error(format!("{what}: {e}")))?;
    if !out.status.success() {
        return err(format!("{what} failed ({}): {}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

fn read_json(f: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(f).map_err(|e| Error(format!("{}: {e}", f.display())))?;
    serde_json::from_str(&text).map_err(|e| Error(format!("{}: {e}", f.display())))
}

fn write_json(f: &Path, v: &Value) -> Result<()> {
    std::fs::write(f, serde_json::to_vec_pretty(v).unwrap()).map_err(|e| Error(format!("{}: {e}", f.display())))
}

/// `ipfs init` and `ipfs-cluster-service init` the first time (identities
/// are generated then and kept); the identities read back.
fn init_peer(bins: &Bins, peer: &mut Peer) -> Result<()> {
    let kdir = peer.kubo_dir();
    if !kdir.join("config").exists() {
        let _ = std::fs::remove_dir_all(&kdir);
        // `test`: loopback addresses, no bootstrap peers, no MDNS, no
        // AutoTLS/AutoConf (no network here, none wanted in tests).
        run(
            Command::new(&bins.ipfs).args(["init", "--profile", "test"]).env("IPFS_PATH", &kdir).env("IPFS_TELEMETRY", "off"),
            &format!("ipfs init in {}", kdir.display()),
        )?;
    }
    let cdir = peer.cluster_dir();
    if !cdir.join("identity.json").exists() {
        let _ = std::fs::remove_dir_all(&cdir);
        run(
            Command::new(&bins.service).arg("--config").arg(&cdir).args(["init", "--consensus", "crdt"]),
            &format!("ipfs-cluster-service init in {}", cdir.display()),
        )?;
    }
    let kcfg = read_json(&kdir.join("config"))?;
    peer.kubo_id = kcfg["Identity"]["PeerID"].as_str().unwrap_or_default().to_string();
    let ident = read_json(&cdir.join("identity.json"))?;
    peer.cluster_id = ident["id"].as_str().unwrap_or_default().to_string();
    if peer.kubo_id.is_empty() || peer.cluster_id.is_empty() {
        return err(format!("peer {}: no identity in {}", peer.index, peer.dir.display()));
    }
    Ok(())
}

fn tcp(port: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{port}")
}

/// Kubo's ports, rewritten on every start (a kept directory gets new free
/// ports), and the other Kubos as permanent peers: blocks added on one peer
/// are fetched by the others' pins over bitswap.
fn configure_kubo(p: &Peer, all: &[Peer]) -> Result<()> {
    let f = p.kubo_dir().join("config");
    let mut c = read_json(&f)?;
    c["Addresses"]["API"] = json!(tcp(p.ports.kubo_rpc));
    c["Addresses"]["Gateway"] = json!(tcp(p.ports.gateway));
    c["Addresses"]["Swarm"] = json!([tcp(p.ports.kubo_swarm)]);
    let others: Vec<Value> =
        all.iter().filter(|o| o.index != p.index).map(|o| json!({"ID": o.kubo_id, "Addrs": [tcp(o.ports.kubo_swarm)]})).collect();
    c["Peering"]["Peers"] = json!(others);
    write_json(&f, &c)
}

/// service.json: the secret, the ports, Kubo behind it, the other peers to
/// bootstrap to; short intervals so peers see each other in seconds.
fn configure_cluster(p: &Peer, all: &[Peer], secret: &str) -> Result<()> {
    let f = p.cluster_dir().join("service.json");
    let mut c = read_json(&f)?;
    let cl = &mut c["cluster"];
    cl["peername"] = json!(format!("peer-{}", p.index));
    cl["secret"] = json!(secret);
    cl["listen_multiaddress"] = json!([tcp(p.ports.cluster_swarm)]);
    cl["peer_addresses"] = json!(all
        .iter()
        .filter(|o| o.index != p.index)
        .map(|o| format!("{}/p2p/{}", tcp(o.ports.cluster_swarm), o.cluster_id))
        .collect::<Vec<_>>());
    cl["mdns_interval"] = json!("0s");
    cl["monitor_ping_interval"] = json!("2s");
    cl["peer_watch_interval"] = json!("2s");
    let api = &mut c["api"];
    api["ipfsproxy"]["listen_multiaddress"] = json!(tcp(p.ports.proxy));
    api["ipfsproxy"]["node_multiaddress"] = json!(tcp(p.ports.kubo_rpc));
    api["restapi"]["http_listen_multiaddress"] = json!(tcp(p.ports.rest));
    api["pinsvcapi"]["http_listen_multiaddress"] = json!(tcp(p.ports.pinsvc));
    c["ipfs_connector"]["ipfshttp"]["node_multiaddress"] = json!(tcp(p.ports.kubo_rpc));
    write_json(&f, &c)
}

impl Cluster {
    /// Every Kubo, then every cluster peer (peer 0 first: the others
    /// bootstrap to it), until every peer sees the others.
    fn start_all(&mut self, deadline: Instant) -> Result<()> {
        let n = self.peers.len();
        for i in 0..n {
            self.spawn_kubo(i)?;
        }
        for i in 0..n {
            self.wait_kubo(i, deadline)?;
        }
        self.spawn_service(0)?;
        self.wait_rest(0, deadline)?;
        for i in 1..n {
            self.spawn_service(i)?;
        }
        self.wait_peers(deadline)
    }

    fn spawn_kubo(&mut self, i: usize) -> Result<()> {
        let p = &self.peers[i];
        let mut cmd = Command::new(&self.bins.ipfs);
        cmd.args(["daemon", "--enable-gc=false"]).env("IPFS_PATH", p.kubo_dir()).env("IPFS_TELEMETRY", "off");
        self.kubos[i] = Some(Guarded::spawn(&format!("peer {i} Kubo"), cmd, &p.kubo_log())?);
        Ok(())
    }

    fn spawn_service(&mut self, i: usize) -> Result<()> {
        let p = &self.peers[i];
        let mut cmd = Command::new(&self.bins.service);
        cmd.arg("--config").arg(p.cluster_dir()).arg("daemon");
        self.services[i] = Some(Guarded::spawn(&format!("peer {i} ipfs-cluster-service"), cmd, &p.cluster_log())?);
        Ok(())
    }

    /// `check_alive`, but a cluster peer that died of a Go panic is started
    /// again, `REVIVALS` times at most (see there why).
    fn revive(&mut self, i: usize) -> Result<()> {
        let crashed = self.services[i].as_ref().is_some_and(|g| !g.alive() && tail(&g.log, 60).contains("panic: "));
        if crashed && self.revived[i] < REVIVALS && self.kubos[i].as_ref().is_none_or(Guarded::alive) {
            self.revived[i] += 1;
            let log = self.peers[i].cluster_log();
            eprintln!("localcluster: peer {i} ipfs-cluster-service crashed while starting; started again (its log: {})", log.display());
            self.services[i] = None;
            return self.spawn_service(i);
        }
        self.check_alive(i)
    }

    fn check_alive(&self, i: usize) -> Result<()> {
        for g in [&self.kubos[i], &self.services[i]].into_iter().flatten() {
            if !g.alive() {
                return err(format!("{} exited; its log ({}):\n{}", g.name, g.log.display(), tail(&g.log, 30)));
            }
        }
        Ok(())
    }

    fn wait_kubo(&self, i: usize, deadline: Instant) -> Result<()> {
        let p = &self.peers[i];
        loop {
            self.check_alive(i)?;
            if let Ok((200, _)) = http(p.kubo_rpc(), "POST", "/api/v0/id", None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return err(format!("peer {i} Kubo did not answer on {} in time; its log ({}):\n{}", p.kubo_rpc(), p.kubo_log().display(), tail(&p.kubo_log(), 30)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_rest(&mut self, i: usize, deadline: Instant) -> Result<()> {
        loop {
            self.revive(i)?;
            let p = &self.peers[i];
            if let Ok((200, _)) = http(p.rest(), "GET", "/id", None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let p = &self.peers[i];
                return err(format!("peer {i} ipfs-cluster-service did not answer on {} in time; its log ({}):\n{}", p.rest(), p.cluster_log().display(), tail(&p.cluster_log(), 30)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The cluster peer IDs peer `i` sees (its REST `/peers`), errors excluded.
    pub fn peers_seen_by(&self, i: usize) -> Result<Vec<String>> {
        let (status, body) = http(self.peers[i].rest(), "GET", "/peers", None)?;
        if status != 200 {
            return err(format!("peer {i} REST /peers: {status}"));
        }
        Ok(json_values(&body)
            .iter()
            .filter(|v| v["error"].as_str().unwrap_or("").is_empty())
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect())
    }

    /// Until every peer's `/peers` lists every peer.
    fn wait_peers(&mut self, deadline: Instant) -> Result<()> {
        let want: Vec<String> = self.peers.iter().map(|p| p.cluster_id.clone()).collect();
        for i in 0..self.peers.len() {
            loop {
                for j in 0..self.peers.len() {
                    self.revive(j)?;
                }
                let seen = self.peers_seen_by(i).unwrap_or_default();
                if want.iter().all(|w| seen.iter().any(|s| s == w)) {
                    break;
                }
                if Instant::now() > deadline {
                    let p = &self.peers[i];
                    return err(format!(
                        "peer {i} sees {} of {} cluster peers ({seen:?}); its log ({}):\n{}",
                        seen.len(),
                        want.len(),
                        p.cluster_log().display(),
                        tail(&p.cluster_log(), 30)
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The cluster's pin set (REST `GET /pins` on peer 0): one status object
    /// per pinned CID.
    pub fn pins(&self) -> Result<Vec<Value>> {
        let (status, body) = http(self.peers[0].rest(), "GET", "/pins", None)?;
        // An empty pin set is `204 No Content`.
        if status == 204 {
            return Ok(Vec::new());
        }
        if status != 200 {
            return err(format!("REST /pins: {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(json_values(&body))
    }

    /// Stops every process (idempotent): all are told at once, then awaited.
    pub fn stop(&mut self) {
        for g in self.services.iter_mut().chain(self.kubos.iter_mut()).flatten() {
            g.signal_stop();
        }
        for g in self.services.iter_mut().chain(self.kubos.iter_mut()) {
            if let Some(mut g) = g.take() {
                g.wait();
            }
        }
    }

    /// Stops peer `i`'s Kubo (its cluster peer keeps running): a failure
    /// to test.
    pub fn stop_kubo(&mut self, i: usize) {
        if let Some(mut g) = self.kubos[i].take() {
            g.wait();
        }
    }

    /// Starts peer `i`'s Kubo again, on the same ports; returns once it answers.
    pub fn start_kubo(&mut self, i: usize) -> Result<()> {
        self.spawn_kubo(i)?;
        self.wait_kubo(i, Instant::now() + Duration::from_secs(60))
    }

    /// Sends `signal` (`"KILL"`, `"TERM"`, ...) to peer `i`'s Kubo and
    /// waits until it is gone: a daemon that dies, not one asked to stop.
    pub fn kill_kubo(&mut self, i: usize, signal: &str) {
        if let Some(mut g) = self.kubos[i].take() {
            g.kill(signal);
        }
    }

    /// The same for peer `i`'s ipfs-cluster-service.
    pub fn kill_service(&mut self, i: usize, signal: &str) {
        if let Some(mut g) = self.services[i].take() {
            g.kill(signal);
        }
    }

    /// Starts peer `i`'s ipfs-cluster-service again, on the same ports and
    /// data; returns once every peer's `/peers` lists every peer again.
    pub fn start_service(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        self.spawn_service(i)?;
        self.wait_rest(i, deadline)?;
        self.wait_peers(deadline)
    }

    /// The process ids of every daemon running (Kubos and cluster peers):
    /// what a benchmark reads their CPU time from.
    pub fn pids(&self) -> Vec<u32> {
        self.kubos.iter().chain(&self.services).flatten().map(|g| g.pid).collect()
    }

    /// Whether peer `i`'s Kubo and cluster peer both run.
    pub fn running(&self, i: usize) -> (bool, bool) {
        let up = |g: &Option<Guarded>| g.as_ref().is_some_and(Guarded::alive);
        (up(&self.kubos[i]), up(&self.services[i]))
    }

    /// The whole cluster restarted: every process stopped (TERM, as an
    /// operator or a rollout stops it), then started again on the same
    /// ports and data, until every peer sees the others.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.start_all(Instant::now() + Duration::from_secs(90))
    }

    /// Where the data lives.
    pub fn dir(&self) -> PathBuf {
        self.peers[0].dir.parent().unwrap().to_path_buf()
    }

    /// Whether the data directory is removed on stop.
    pub fn is_temporary(&self) -> bool {
        self.tmp.is_some()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        // `tmp` is dropped after this: the directory goes once nothing runs in it.
    }
}

/// The JSON values of a body: one array, or a stream of objects (the REST
/// API streams lists).
pub fn json_values(body: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        match v {
            Ok(Value::Array(a)) => out.extend(a),
            Ok(v) => out.push(v),
            Err(_) => break,
        }
    }
    out
}

/// The last `n` lines of a file.
pub fn tail(f: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(f).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One HTTP/1.0 exchange (the daemons then close the connection after an
/// unframed body: nothing to de-chunk). 10 s at most.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Result<(u16, Vec<u8>)> {
    let e = |x: std::io::Error| Error(format!("{method} http://{addr}{path}: {x}"));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(e)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(e)?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some((ct, b)) = body {
        req.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n", b.len()));
        let mut r = req.into_bytes();
        r.extend_from_slice(b);
        s.write_all(&r).map_err(e)?;
    } else {
        req.push_str(if method == "POST" { "Content-Length: 0\r\n\r\n" } else { "\r\n" });
        s.write_all(req.as_bytes()).map_err(e)?;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(e)?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| Error(format!("{method} http://{addr}{path}: no response head")))?;
    let status = String::from_utf8_lossy(&raw[..end]).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, raw[end + 4..].to_vec()))
}

/// A program under a guard (see the crate documentation): it stops when
/// `stop`/`Drop` closes the guard's pipe or when this process dies.
pub struct Guarded {
    pub name: String,
    /// The program's own process id.
    pub pid: u32,
    pub log: PathBuf,
    guard: Child,
    pipe: Option<ChildStdin>,
}

/// The guard: starts the program in the background (stdout and stderr to
/// the log), prints its pid, waits for end of input, then TERM, and KILL
/// after 5 s. The guard is its process group's leader, the program in it.
const GUARD: &str = r#"
"$@" </dev/null >>"$GUARD_LOG" 2>&1 &
p=$!
echo "$p"
while read -r _; do :; done
kill -TERM "$p" 2>/dev/null
sleep 5 & s=$!
wait -n "$p" "$s"
kill -KILL "$p" "$s" 2>/dev/null
wait
"#;

impl Guarded {
    /// Starts `cmd` (its program, arguments, environment and working
    /// directory; its standard streams are the guard's business) logging to
    /// `log` (appended).
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> Result<Guarded> {
        let mut g = Command::new("bash");
        g.arg("-c").arg(GUARD).arg("guard").arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => g.env(k, v),
                None => g.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            g.current_dir(d);
        }
        g.env("GUARD_LOG", log).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).process_group(0);
        let mut guard = g.spawn().map_err(|e| Error(format!("cannot start {name}: {e}")))?;
        let pipe = guard.stdin.take();
        let mut line = String::new();
        let mut out = BufReader::new(guard.stdout.take().unwrap());
        let _ = out.read_line(&mut line);
        let Ok(pid) = line.trim().parse() else {
            let _ = guard.kill();
            let _ = guard.wait();
            return err(format!("cannot start {name}: its guard printed no pid"));
        };
        Ok(Guarded { name: name.into(), pid, log: log.into(), guard, pipe })
    }

    /// Whether the program still runs (not gone, not a zombie).
    pub fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(s) => s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    /// Tells the guard to stop the program, without waiting.
    pub fn signal_stop(&mut self) {
        self.pipe.take();
    }

    /// Sends `signal` to the program itself (not through the guard), waits
    /// until it is gone (10 s at most, then KILL), then lets the guard go.
    pub fn kill(&mut self, signal: &str) {
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(self.pid.to_string()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.wait();
    }

    /// Stops the program and waits until it is gone (at most about 5 s).
    pub fn wait(&mut self) {
        self.signal_stop();
        let _ = self.guard.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.wait();
    }
}
