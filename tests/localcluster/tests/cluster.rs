//! The local cluster starts real daemons that see each other, pin
//! cluster-wide, and leave nothing running however its owner ends.

use std::process::Command;
use std::time::{Duration, Instant};

use localcluster::{http, json_values};

fn multipart(name: &str, data: &[u8]) -> (String, Vec<u8>) {
    let b = "localclusterboundary";
    let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

fn wait_gone(pids: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    while !pids.iter().all(|p| gone(*p)) {
        assert!(Instant::now() < deadline, "still running after {within:?}: {:?}", pids.iter().filter(|p| !gone(**p)).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemons' pids, read from the process table: every process whose
/// command line names this data directory or whose environment does.
fn daemons_under(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let has = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle.as_bytes());
        if (has(&cmd) || has(&env)) && !gone(pid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn three_peers_see_each_other_and_pin_everywhere() {
    let t = Instant::now();
    let cluster = localcluster::start(3).expect("local cluster");
    eprintln!("3 peers up in {:?}", t.elapsed());
    let ids: Vec<&str> = cluster.peers.iter().map(|p| p.cluster_id.as_str()).collect();
    for i in 0..3 {
        let mut seen = cluster.peers_seen_by(i).unwrap();
        seen.sort();
        let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(seen, want, "peer {i}");
    }
    // An add through peer 1's proxy is pinned on every peer's Kubo.
    let (ct, body) = multipart("x.txt", b"pinned everywhere\n");
    let (status, out) = http(cluster.peers[1].proxy(), "POST", "/api/v0/add", Some((&ct, &body))).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let cid = json_values(&out).last().and_then(|v| v["Hash"].as_str().map(str::to_string)).expect("a Hash");
    // Peer 0's view of the shared pin set gets it by CRDT broadcast.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.pins().unwrap().iter().any(|p| p["cid"].as_str() == Some(&cid)) {
        assert!(Instant::now() < deadline, "{cid} never in peer 0's /pins");
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &cluster.peers {
        loop {
            let (s, b) = http(p.kubo_rpc(), "POST", &format!("/api/v0/pin/ls?arg={cid}"), None).unwrap();
            if s == 200 && String::from_utf8_lossy(&b).contains(&cid) {
                break;
            }
            assert!(Instant::now() < deadline, "peer {} Kubo never pinned {cid}", p.index);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let dir = cluster.dir();
    let pids = daemons_under(&dir);
    assert!(pids.len() >= 6, "expected 6 daemons (and their guards) under {}: {pids:?}", dir.display());
    let t = Instant::now();
    drop(cluster);
    eprintln!("stopped in {:?}", t.elapsed());
    wait_gone(&pids, Duration::from_secs(1));
    assert!(!dir.exists(), "temporary data left at {}", dir.display());
}

/// Run as a child by the test below: starts a cluster, prints its data
/// directory, and waits to be killed.
#[test]
fn child_that_gets_killed() {
    if std::env::var_os("LOCALCLUSTER_CHILD").is_none() {
        return;
    }
    let cluster = localcluster::start(2).expect("local cluster");
    // libtest has printed "test NAME ... " without a newline before it.
    println!("DIR {}", cluster.dir().display());
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_killed_owner_leaves_no_daemon_running() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_that_gets_killed", "--nocapture", "--test-threads=1"])
        .env("LOCALCLUSTER_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let dir = out.lines().map_while(Result::ok).find_map(|l| l.split_once("DIR ").map(|(_, d)| d.to_string())).expect("the child's cluster started");
    let pids = daemons_under(std::path::Path::new(&dir));
    assert!(pids.len() >= 4, "{pids:?}");
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    wait_gone(&pids, Duration::from_secs(10));
}
