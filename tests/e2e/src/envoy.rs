//! Starts the real Envoy (`ENVOY_BIN`, set by scripts/env.sh) on a copy of
//! a repository configuration with its ports and paths replaced.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Envoy {
    child: Child,
    /// The public listener's port.
    pub port: u16,
    pub admin: u16,
    dir: std::path::PathBuf,
}

pub use crate::envoy_config::Patch;

impl Envoy {
    /// Starts Envoy on `config` (relative to the repository root) with the
    /// listener and admin ports set to 0 and `patches` applied.
    pub fn start(config: &str, patches: &[Patch]) -> Envoy {
        Self::start_with(config, patches, true)
    }

    /// The same configuration without its Wasm filters: the baseline the
    /// benchmarks compare with.
    pub fn start_without_filters(config: &str, patches: &[Patch]) -> Envoy {
        Self::start_with(config, patches, false)
    }

    /// Starts Envoy, or returns its log when it refuses the configuration.
    pub fn try_start(config: &str, patches: &[Patch]) -> Result<Envoy, String> {
        Self::launch(config, patches, &["*"])
    }

    /// The configuration with only the Wasm filters named in `keep` (`"*"`:
    /// all), e.g. the router alone for the benchmark.
    pub fn start_keeping(config: &str, patches: &[Patch], keep: &[&str]) -> Envoy {
        Self::launch(config, patches, keep).unwrap_or_else(|log| panic!("envoy did not start:\n{log}"))
    }

    fn start_with(config: &str, patches: &[Patch], filters: bool) -> Envoy {
        Self::start_keeping(config, patches, if filters { &["*"] } else { &[] })
    }

    fn launch(config: &str, patches: &[Patch], keep: &[&str]) -> Result<Envoy, String> {
        let root = crate::repo_root();
        let text = std::fs::read_to_string(root.join(config)).expect("envoy config");
        let wasm = crate::wasm_dir();
        assert!(wasm.join("add_response.wasm").exists(), "{} has no add_response.wasm: run ./x build first", wasm.display());
        let text = crate::envoy_config::edit(&text, patches, keep, &wasm).unwrap_or_else(|e| panic!("{config}: {e}"));

        let dir = std::env::temp_dir().join(format!("edge-envoy-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("envoy.yaml");
        std::fs::write(&cfg, text).unwrap();
        let admin_file = dir.join("admin");
        let bin = std::env::var("ENVOY_BIN").expect("ENVOY_BIN: source scripts/env.sh (./x test does)");
        let log = std::fs::File::create(dir.join("envoy.log")).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&cfg)
            .args(["--concurrency", "1", "--use-dynamic-base-id", "--log-level"])
            // EDGE_ENVOY_LOG_LEVEL=debug when a test needs Envoy's view.
            .arg(std::env::var("EDGE_ENVOY_LOG_LEVEL").unwrap_or_else(|_| "warn".into()))
            .arg("--admin-address-path")
            .arg(&admin_file)
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let mut envoy = Envoy { child, port: 0, admin: 0, dir };
        envoy.wait_ready(&admin_file)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_file: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("envoy exited ({status}):\n{}", self.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("envoy not ready in 60 s:\n{}", self.log()));
            }
            if let Ok(addr) = std::fs::read_to_string(admin_file) {
                if let Some(port) = addr.trim().rsplit(':').next().and_then(|p| p.parse().ok()) {
                    self.admin = port;
                    if let Some(p) = self.listener_port() {
                        self.port = p;
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The bound port of the first listener, from the admin API.
    fn listener_port(&self) -> Option<u16> {
        let r = crate::http::get(self.admin, "/listeners").ok()?;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        // "public::127.0.0.1:PORT"
        let line = text.lines().find(|l| l.contains("::"))?;
        line.rsplit(':').next()?.trim().parse().ok().filter(|p| *p != 0)
    }

    /// Envoy's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system, every thread) Envoy has used.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs_of(self.child.id())
    }

    /// Envoy's resident memory in bytes (for the benchmark).
    pub fn rss_bytes(&self) -> u64 {
        rss_of(self.child.id())
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process's resident memory in bytes (Linux `/proc`), 0 if unknown.
/// CPU seconds (user + system, every thread) process `pid` has used.
pub fn cpu_secs_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the
    // name), in USER_HZ, which Linux fixes at 100 in its ABI.
    (f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)) as f64 / 100.0
}

pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Reads lines of a child's stdout until one starts with `prefix`.
pub fn read_line_with(out: &mut BufReader<std::process::ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("no line starting with {prefix:?}");
        }
        if line.starts_with(prefix) {
            return line.trim().to_string();
        }
    }
}
