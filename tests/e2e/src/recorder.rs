//! Stand-in backends for the router and health tests: each answers every
//! request with `200` and its own name, and records what reached it
//! (method, target, headers), so a test can prove where a request went and
//! that nothing else got it. One can be stopped (connection refused, open
//! connections closed) and started again on the same port.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the backend read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Lowercase names, values as sent.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

struct Shared {
    name: String,
    seen: Mutex<Vec<Seen>>,
    down: AtomicBool,
    /// Bumped on every stop, so connections from before it close.
    epoch: AtomicU64,
}

pub struct Recorder {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Recorder {
    pub fn spawn(name: &str) -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let addr = l.local_addr().unwrap();
        let shared = Arc::new(Shared { name: name.into(), seen: Mutex::new(Vec::new()), down: AtomicBool::new(false), epoch: AtomicU64::new(0) });
        serve(l, shared.clone());
        Recorder { addr, shared }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Everything recorded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Forgets what was recorded.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap())
    }

    /// Stops listening and closes open connections: the port refuses.
    pub fn stop(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        // Wake the accept loop so it drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
            assert!(Instant::now() < deadline, "{} still accepts after stop", self.shared.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Listens again on the same port.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let l = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot rebind {}: {e}", self.addr);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        self.shared.down.store(false, Ordering::SeqCst);
        serve(l, self.shared.clone());
    }
}

fn serve(l: TcpListener, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            if shared.down.load(Ordering::SeqCst) {
                return;
            }
            let Ok(s) = s else { continue };
            let shared = shared.clone();
            std::thread::spawn(move || {
                let _ = connection(s, &shared);
            });
        }
    });
}

fn connection(s: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let epoch = shared.epoch.load(Ordering::SeqCst);
    s.set_nodelay(true)?;
    // Short reads, so a stopped backend's idle connections close soon.
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    loop {
        let mut line = String::new();
        loop {
            if shared.epoch.load(Ordering::SeqCst) != epoch {
                return Ok(());
            }
            match r.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => break,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(e),
            }
        }
        r.get_ref().set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut parts = line.trim_end().splitn(3, ' ');
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let length = get("content-length").and_then(|v| v.parse::<u64>().ok());
        let chunked = length.is_none() && get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        // A body cut short is still recorded and answered, as before.
        let _ = crate::http::copy_body(&mut r, length, chunked, &mut std::io::sink())?;
        if shared.down.load(Ordering::SeqCst) {
            // Stopped while the request came in: no answer.
            return Ok(());
        }
        let head = method == "HEAD";
        shared.seen.lock().unwrap().push(Seen { method, target, headers });
        let body = format!("{{\"backend\":\"{}\"}}\n", shared.name);
        let mut out = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Recorder: {}\r\nContent-Length: {}\r\n\r\n", shared.name, body.len());
        if !head {
            out.push_str(&body);
        }
        w.write_all(out.as_bytes())?;
        r.get_ref().set_read_timeout(Some(Duration::from_millis(100)))?;
    }
}
