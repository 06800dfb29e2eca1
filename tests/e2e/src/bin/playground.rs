//! `./x run`: a local cluster of real Kubo + ipfs-cluster peers with Envoy
//! and the three filters (manifests/envoy/envoy.yaml) in front of it, for a
//! person to try.
//!
//!   playground [--peers N] [--dir DIR] [--fresh]
//!
//! Peer 0 listens on the backend ports envoy.yaml names (read from its
//! clusters), so the manifest runs unchanged but for two things: the
//! `.wasm` directory and the router's credentials (a bearer token generated
//! once per data directory; the shipped read-only preset wants one for
//! `add`). The other peers take free ports. Data (identities, the cluster
//! secret, the token, the repositories) is kept in DIR between runs;
//! `--fresh` deletes it first.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::envoy_config::{self, Patch};
use localcluster::{FixedPorts, Guarded, Options};

const CONFIG: &str = "manifests/envoy/envoy.yaml";
const SAMPLE: &str = "hello from ipfs-edge\n";

fn main() {
    if let Err(e) = run() {
        eprintln!("./x run: {e}");
        std::process::exit(1);
    }
}

/// `${XDG_DATA_HOME:-~/.local/share}/ipfs-edge/playground`: data a person
/// keeps, not a cache.
fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share"));
    base.join("ipfs-edge/playground")
}

struct Args {
    peers: usize,
    dir: PathBuf,
    fresh: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args { peers: 3, dir: default_dir(), fresh: false };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--fresh" => a.fresh = true,
            "--dir" => a.dir = it.next().ok_or("--dir needs a directory")?.into(),
            "--peers" => a.peers = it.next().and_then(|n| n.parse().ok()).filter(|n| *n >= 1).ok_or("--peers needs a number >= 1")?,
            "-h" | "--help" => {
                println!("./x run [--peers N] [--dir DIR] [--fresh]\n  data kept in {} unless --dir; --fresh deletes it first", default_dir().display());
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (--peers N, --dir DIR, --fresh)")),
        }
    }
    Ok(a)
}

/// The port of `socket_address` under a YAML node.
fn port_at(v: &serde_yaml_ng::Value) -> Option<u16> {
    v.get("socket_address")?.get("port_value")?.as_u64().and_then(|p| u16::try_from(p).ok())
}

/// envoy.yaml's listener and admin ports, and the port of each backend
/// cluster by name.
type ManifestPorts = (u16, u16, Vec<(String, u16)>);

fn manifest_ports(text: &str) -> Result<ManifestPorts, String> {
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| format!("{CONFIG}: {e}"))?;
    let sr = &y["static_resources"];
    let listener = port_at(&sr["listeners"][0]["address"]).ok_or(format!("{CONFIG}: no listener port"))?;
    let admin = port_at(&y["admin"]["address"]).ok_or(format!("{CONFIG}: no admin port"))?;
    let mut backends = Vec::new();
    for c in sr["clusters"].as_sequence().ok_or(format!("{CONFIG}: no clusters"))? {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let ep = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        if let Some(p) = port_at(ep) {
            backends.push((name, p));
        }
    }
    Ok((listener, admin, backends))
}

fn random_hex(n: usize) -> Result<String, String> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn run() -> Result<(), String> {
    let a = args()?;
    if a.fresh && a.dir.exists() {
        eprintln!("==> --fresh: deleting {}", a.dir.display());
        std::fs::remove_dir_all(&a.dir).map_err(|e| format!("cannot delete {}: {e}", a.dir.display()))?;
    }
    std::fs::create_dir_all(&a.dir).map_err(|e| format!("cannot create {}: {e}", a.dir.display()))?;
    let root = e2e::repo_root();
    let text = std::fs::read_to_string(root.join(CONFIG)).map_err(|e| format!("{CONFIG}: {e}"))?;
    let (listener, admin, backends) = manifest_ports(&text)?;
    let port = |name: &str| backends.iter().find(|(n, _)| n == name).map(|(_, p)| *p).ok_or(format!("{CONFIG}: no cluster {name}"));
    let fixed = FixedPorts {
        proxy: Some(port("cluster_proxy")?),
        kubo_rpc: Some(port("kubo_rpc")?),
        rest: Some(port("cluster_rest")?),
        gateway: Some(port("gateway")?),
    };
    for (p, what) in [(listener, "Envoy's listener"), (admin, "Envoy's admin")] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", p)) {
            return Err(format!("port {p} ({what}, {CONFIG}) is in use on 127.0.0.1 ({e}): another ./x run? (`ss -ltnp 'sport = :{p}'`)"));
        }
    }
    let wasm = e2e::wasm_dir();
    for f in ["health.wasm", "router.wasm", "add_response.wasm"] {
        if !wasm.join(f).exists() {
            return Err(format!("no {} (./x build makes it)", wasm.join(f).display()));
        }
    }
    let token_file = a.dir.join("token");
    let token = match std::fs::read_to_string(&token_file) {
        Ok(t) if t.trim().len() >= 16 => t.trim().to_string(),
        _ => {
            let t = random_hex(16)?;
            std::fs::write(&token_file, &t).map_err(|e| format!("{}: {e}", token_file.display()))?;
            t
        }
    };

    eprintln!("==> local cluster: {} peers (Kubo + ipfs-cluster-service), data in {}", a.peers, a.dir.display());
    let t = Instant::now();
    let cluster = Options { peers: a.peers, dir: Some(a.dir.clone()), peer0: fixed, ..Options::default() }.start().map_err(|e| e.to_string())?;
    eprintln!("==> cluster up in {:.1} s", t.elapsed().as_secs_f64());

    // The manifest with the .wasm directory and the router's credentials: the token's
    // digest, as the deployer writes it (the token itself stays in the data directory).
    let digest = edge_logic::router::bearer_digest(&token);
    let router = format!(r#"{{"preset": "read-only", "credentials": {{"bearer_tokens": ["{digest}"]}}}}"#);
    let cfg_text = envoy_config::patch(&text, &[Patch::FilterConfig("router", router)], &wasm).map_err(|e| format!("{CONFIG}: {e}"))?;
    let cfg = a.dir.join("envoy.yaml");
    std::fs::write(&cfg, cfg_text).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let bin = std::env::var("ENVOY_BIN").map_err(|_| "ENVOY_BIN is not set (./x sets it)".to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&cfg).args(["--log-level", "warn", "--use-dynamic-base-id"]).current_dir(&root);
    let envoy_log = a.dir.join("envoy.log");
    let _ = std::fs::remove_file(&envoy_log);
    let envoy = Guarded::spawn("Envoy", cmd, &envoy_log).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !envoy.alive() {
            return Err(format!("Envoy exited; its log ({}):\n{}", envoy_log.display(), localcluster::tail(&envoy_log, 30)));
        }
        if let Ok((200, _)) = localcluster::http(([127, 0, 0, 1], listener).into(), "GET", "/", None) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("Envoy did not answer on 127.0.0.1:{listener} in 60 s; its log ({}):\n{}", envoy_log.display(), localcluster::tail(&envoy_log, 30)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The CID the sample will get, so the second command can be pasted as is.
    let b = "playgroundboundary";
    let body = format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"-\"\r\nContent-Type: application/octet-stream\r\n\r\n{SAMPLE}\r\n--{b}--\r\n");
    let (_, out) = localcluster::http(cluster.peers[0].kubo_rpc(), "POST", "/api/v0/add?only-hash=true", Some((&format!("multipart/form-data; boundary={b}"), body.as_bytes())))
        .map_err(|e| e.to_string())?;
    let cid = localcluster::json_values(&out).last().and_then(|v| v["Hash"].as_str().map(str::to_string)).ok_or("Kubo gave no CID for the sample")?;

    let url = format!("http://127.0.0.1:{listener}");
    println!();
    println!("ipfs-edge is serving {url}  ({} peers; data in {}; Ctrl-C stops everything)", a.peers, a.dir.display());
    println!();
    println!("  # add a file through the edge (the router wants the token for add):");
    println!("  printf '{}' | curl -sS -H 'Authorization: Bearer {token}' -F file=@- '{url}/api/v0/add'", SAMPLE.replace('\n', "\\n"));
    println!("  # read it back through the gateway:");
    println!("  curl -sS '{url}/ipfs/{cid}'");
    println!();

    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| format!("Ctrl-C handler: {e}"))?;
    // Until Ctrl-C (or TERM), or a daemon dies.
    loop {
        if rx.recv_timeout(Duration::from_secs(1)).is_ok() {
            break;
        }
        if !envoy.alive() {
            return Err(format!("Envoy exited; its log ({}):\n{}", envoy_log.display(), localcluster::tail(&envoy_log, 30)));
        }
    }
    eprintln!("==> stopping Envoy and the cluster");
    drop(envoy);
    drop(cluster);
    eprintln!("==> stopped; data kept in {}", a.dir.display());
    Ok(())
}
