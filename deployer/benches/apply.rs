//! `cargo bench -p deployer --bench apply` (not a test): in one run against a real
//! control plane (scripts/kube-apiserver.sh build, once), the time and number of API
//! requests of `up`'s apply phase (`deployer bench-apply`: steps 2-6, no waits) against the
//! same objects applied with `kubectl apply --server-side`, first into an empty namespace and
//! then as a no-op rerun. Requests are counted from the API server's audit log (one line per
//! completed request), the same way for both. kubectl's discovery cache is warmed first, so
//! kubectl runs as it does day to day; the deployer keeps no cache and discovers every run.
//! Figures: BENCHMARKS.md, "deployer".

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn deployer_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_deployer"))
}

/// Completed requests by `admin` in the audit log after byte `from`; and the new end.
fn requests_since(log: &Path, from: usize) -> (usize, usize) {
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(log).unwrap();
    let n = text[from..]
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["user"]["username"] == "admin" && e["stage"] == "ResponseComplete")
        .count();
    (n, text.len())
}

fn timed(mut c: Command) -> (Duration, String) {
    let t = Instant::now();
    let out = c.output().expect("runs");
    let d = t.elapsed();
    assert!(out.status.success(), "{c:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (d, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    requests: Vec<usize>,
}

impl Samples {
    fn median_ms(&self) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    fn median_requests(&self) -> usize {
        let mut v = self.requests.clone();
        v.sort();
        v[v.len() / 2]
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing to filter here.
    let server = support::start();
    let bundle = support::bundle();
    let filters = support::filters();
    let admin = server.admin();
    let log = server.audit_log();
    let kubectl_cache = tempfile::tempdir().unwrap();
    let deployer = |ns: &str, args: &[&str]| {
        let mut c = Command::new(deployer_bin());
        c.arg("--kubeconfig").arg(&admin).args(["--namespace", ns, "--domain", "ipfs.example.test", "--replicas", "3"]);
        c.arg("--filters-dir").arg(filters.path()).args(args);
        c
    };
    let kubectl = |args: &[&str]| {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(&admin).arg("--cache-dir").arg(kubectl_cache.path()).args(args);
        c
    };

    // Step 1 (CRDs from the bundle) once, outside the measurement.
    let mut up = deployer("bench-setup", &["up", "--no-wait", "--bundle"]);
    up.arg(bundle.path());
    timed(up);
    timed(kubectl(&["api-resources"]));

    let (mut d_create, mut d_noop, mut k_create, mut k_noop) =
        (Samples::default(), Samples::default(), Samples::default(), Samples::default());
    let mut objects = 0;
    for round in 0..ROUNDS {
        // The deployer: its own namespace, applied, then applied again.
        let ns = format!("bench-d-{round}");
        for (i, samples) in [&mut d_create, &mut d_noop].into_iter().enumerate() {
            let (_, from) = requests_since(&log, 0);
            let (t, out) = timed(deployer(&ns, &["bench-apply"]));
            let (n, _) = requests_since(&log, from);
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            objects = v["objects"].as_u64().unwrap() as usize;
            if i == 1 {
                assert_eq!(v["changed"], 0, "the rerun changed objects: {v}");
            }
            samples.ms.push(t.as_secs_f64() * 1e3);
            samples.requests.push(n);
        }
        // kubectl: the same objects rendered for its own namespace.
        let ns = format!("bench-k-{round}");
        let dir = tempfile::tempdir().unwrap();
        timed({
            let mut c = deployer(&ns, &["render", "--out"]);
            c.arg(dir.path());
            c
        });
        for samples in [&mut k_create, &mut k_noop] {
            let (_, from) = requests_since(&log, 0);
            let mut c = kubectl(&["apply", "--server-side", "--force-conflicts", "--field-manager", "ipfs-edge-deployer", "-f"]);
            c.arg(dir.path());
            let (t, _) = timed(c);
            let (n, _) = requests_since(&log, from);
            samples.ms.push(t.as_secs_f64() * 1e3);
            samples.requests.push(n);
        }
    }
    server.stop();

    println!("deployer apply phase vs kubectl apply --server-side, {objects} objects, median of {ROUNDS} rounds");
    println!(
        "(kube-apiserver {} + etcd {} on 127.0.0.1; whole process wall time; requests from the audit log)",
        support::tool_version("KUBE_VERSION"),
        support::tool_version("ETCD_VERSION")
    );
    println!("{:<34} {:>10} {:>9}", "", "time (ms)", "requests");
    for (name, s) in [
        ("deployer: apply into empty ns", &d_create),
        ("kubectl: apply into empty ns", &k_create),
        ("deployer: no-op rerun", &d_noop),
        ("kubectl: no-op rerun", &k_noop),
    ] {
        println!("{:<34} {:>10.0} {:>9}", name, s.median_ms(), s.median_requests());
    }
    let ratio = |a: &Samples, b: &Samples| (a.median_ms() / b.median_ms(), a.median_requests() as f64 / b.median_requests() as f64);
    let (t, r) = ratio(&d_create, &k_create);
    println!("ratio deployer/kubectl, apply: time {t:.2}, requests {r:.2}");
    let (t, r) = ratio(&d_noop, &k_noop);
    println!("ratio deployer/kubectl, no-op rerun: time {t:.2}, requests {r:.2}");
}
