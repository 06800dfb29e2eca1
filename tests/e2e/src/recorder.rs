//! Recording taps for the router, health and streaming tests: a tap sits in
//! front of a real daemon, passes each request on to it and the answer back
//! (with an `X-Recorder: <name>` header), and records what reached it
//! (method, target, headers), so a test can prove where a request went and
//! that nothing else got it. One can be stopped (connection refused, open
//! connections closed) and started again on the same port, and one can
//! break the daemon's answer on purpose ([`Fault`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a tap waits for its daemon to start answering. A daemon asked
/// for content no peer has searches for minutes (Kubo's `cat`, the gateway,
/// a cluster pin): the tap then answers `504` itself, with `X-Recorder` and
/// `X-Tap`, so a routing test learns where the request went without the
/// wait.
pub const UPSTREAM_FIRST_BYTE: Duration = Duration::from_millis(500);

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

/// What a tap does to the daemon's answer on its way back: the real bytes,
/// broken on purpose where a real daemon cannot be made to break them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Passes the answer as it comes.
    None,
    /// Passes every byte, in pieces of 1 to 300 bytes a millisecond apart,
    /// so lines reach Envoy cut at every kind of place.
    Dribble,
    /// Passes the first `n` bytes of the answer (head included), then
    /// closes: a daemon that dies mid-answer.
    CutAfter(usize),
}

struct Shared {
    name: String,
    /// The real daemon behind the tap.
    upstream: SocketAddr,
    /// Changed at run time by the soak's fault schedule.
    fault: Mutex<Fault>,
    /// Waits for the daemon as long as it takes, and streams a body of
    /// known length on as it arrives instead of reading it first (the
    /// soak: real adds of many MiB, clients that give up mid-upload).
    patient: bool,
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
    /// A pass-through tap in front of the daemon at `upstream`.
    pub fn tap(name: &str, upstream: SocketAddr) -> Recorder {
        Self::start(name, upstream, Fault::None)
    }

    /// A tap that breaks the daemon's answers with `fault`.
    pub fn faulty_tap(name: &str, upstream: SocketAddr, fault: Fault) -> Recorder {
        Self::start(name, upstream, fault)
    }

    /// A patient, streaming pass-through tap whose fault can be changed
    /// while it runs ([`Recorder::set_fault`]): the soak's.
    pub fn streaming_tap(name: &str, upstream: SocketAddr) -> Recorder {
        Self::start_with(name, upstream, Fault::None, true)
    }

    /// What the tap does to answers from now on.
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    fn start(name: &str, upstream: SocketAddr, fault: Fault) -> Recorder {
        Self::start_with(name, upstream, fault, false)
    }

    fn start_with(name: &str, upstream: SocketAddr, fault: Fault, patient: bool) -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let addr = l.local_addr().unwrap();
        let shared = Arc::new(Shared { name: name.into(), upstream, fault: Mutex::new(fault), patient, seen: Mutex::new(Vec::new()), down: AtomicBool::new(false), epoch: AtomicU64::new(0) });
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
    // One request per connection: each goes on to the daemon on a
    // connection of its own, closed after the answer (the answer's framing
    // is then never needed: the daemon closes, the tap closes).
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
    let upstream = shared.upstream;
    let streamed = shared.patient && !chunked;
    let mut body = Vec::new();
    if !streamed {
        let _ = crate::http::copy_body(&mut r, length, chunked, &mut body)?;
    }
    if shared.down.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        if !matches!(k.as_str(), "connection" | "keep-alive" | "content-length" | "transfer-encoding" | "te" | "trailer") {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if streamed {
        if let Some(n) = length {
            out.push_str(&format!("content-length: {n}\r\n"));
        }
    } else if length.is_some() || chunked {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("connection: close\r\n\r\n");
    shared.seen.lock().unwrap().push(Seen { method, target, headers });
    let mut u = TcpStream::connect_timeout(&upstream, Duration::from_secs(2))?;
    u.set_read_timeout(Some(if shared.patient { Duration::from_secs(600) } else { UPSTREAM_FIRST_BYTE }))?;
    let mut req = out.into_bytes();
    req.extend_from_slice(&body);
    u.write_all(&req)?;
    if streamed {
        // A body cut short (the client gave up) is cut short for the daemon too.
        if crate::http::copy_body(&mut r, length, false, &mut u)?.is_none() {
            return Ok(());
        }
    }
    let mut ur = BufReader::new(u.try_clone()?);
    let mut status = String::new();
    if let Err(e) = ur.read_line(&mut status) {
        if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            return Err(e);
        }
        // The daemon is still looking (content no peer has): where
        // the request went is known; say so and stop waiting.
        let answer = format!("HTTP/1.1 504 Gateway Timeout\r\nX-Recorder: {}\r\nX-Tap: no answer in {UPSTREAM_FIRST_BYTE:?}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", shared.name);
        w.write_all(answer.as_bytes())?;
        return Ok(());
    }
    u.set_read_timeout(Some(Duration::from_secs(if shared.patient { 600 } else { 30 })))?;
    let mut first = status.into_bytes();
    let fault = *shared.fault.lock().unwrap();
    // A faulty tap stands in for the daemon's own connection: it
    // adds nothing, so answers compare with the daemon's.
    if fault == Fault::None {
        first.extend_from_slice(format!("X-Recorder: {}\r\n", shared.name).as_bytes());
    }
    match fault {
        Fault::None => {
            w.write_all(&first)?;
            std::io::copy(&mut ur, &mut w).map(|_| ())
        }
        Fault::Dribble => {
            w.write_all(&first)?;
            let sizes = [1usize, 7, 13, 64, 300, 2, 29];
            let mut rest = Vec::new();
            ur.read_to_end(&mut rest)?;
            let (mut at, mut i) = (0, 0);
            while at < rest.len() {
                let n = sizes[i % sizes.len()].min(rest.len() - at);
                w.write_all(&rest[at..at + n])?;
                at += n;
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }
        Fault::CutAfter(n) => {
            let mut all = first;
            ur.read_to_end(&mut all)?;
            all.truncate(n);
            w.write_all(&all)?;
            let _ = w.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
    }
}
