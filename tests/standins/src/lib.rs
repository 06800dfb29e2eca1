//! Test stand-ins for Kubo's RPC API and the ipfs-cluster v1.1.6 IPFS proxy, limited to
//! what `/api/v0/add` (and Kubo's `/api/v0/version`) put on the wire. Everything here is
//! a reimplementation of upstream behaviour read from the sources named in each module
//! and in UPSTREAM.md; no upstream code is copied.

pub mod adder;
pub mod cluster;
pub mod dag;
pub mod gofmt;
pub mod gohttp;
pub mod kubo;
pub mod multipart;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// Shared state of a running stand-in.
#[derive(Debug, Default)]
pub struct StandinState {
    /// Port the server listens on (Kubo patches it into its allowed CORS origins).
    pub port: u16,
    /// Root CIDs pinned, in order (test hook, see `pins_hook`).
    pub pins: Mutex<Vec<String>>,
    /// Cluster: sleep this long between the last event and the pin (to observe the
    /// "root event, then pin, then end of body" timing).
    pub pin_delay_ms: u64,
    /// Cluster: API port of the Kubo daemon behind it (its CORS allowed origins,
    /// copied into the cluster's answers, name that port). Default 5001.
    pub kubo_port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Kubo,
    Cluster,
}

/// `GET /__standin/pins`: JSON array of pinned root CIDs. A test hook of the
/// stand-ins, not an upstream endpoint.
pub fn pins_hook(state: &StandinState, req: &gohttp::Request, w: &mut gohttp::GoResponse) {
    if req.method != "GET" {
        w.header.set("Allow", "GET");
        gohttp::http_error(w, "405 - Method Not Allowed", 405);
        return;
    }
    let pins = state.pins.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut o = b"[".to_vec();
    for (i, p) in pins.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        gofmt::json_string(&mut o, p.as_bytes());
    }
    o.extend_from_slice(b"]\n");
    w.header.set("Content-Type", "application/json");
    w.write(&o);
}

/// A bound, not yet serving stand-in.
pub struct Server {
    listener: TcpListener,
    pub state: Arc<StandinState>,
    kind: Kind,
}

impl Server {
    pub fn bind(addr: &str, kind: Kind, pin_delay_ms: u64) -> std::io::Result<Server> {
        Self::bind_with(addr, kind, pin_delay_ms, 5001)
    }

    pub fn bind_with(addr: &str, kind: Kind, pin_delay_ms: u64, kubo_port: u16) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(StandinState { port, pins: Mutex::new(Vec::new()), pin_delay_ms, kubo_port });
        Ok(Server { listener, state, kind })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serve forever, one thread per connection.
    pub fn serve(self) {
        for conn in self.listener.incoming() {
            let Ok(stream) = conn else { continue };
            let state = self.state.clone();
            let kind = self.kind;
            // Large stacks: directory depth comes from the client and the DAG code
            // recurses per level (Go's stacks grow; ours must not overflow).
            let _ = std::thread::Builder::new().stack_size(256 << 20).spawn(move || {
                let _ = stream.set_nodelay(true);
                gohttp::serve_conn(stream, &|req, w| match kind {
                    Kind::Kubo => kubo::handle(&state, req, w),
                    Kind::Cluster => cluster::handle(&state, req, w),
                });
            });
        }
    }

    /// Serve on a background thread; returns the address (for in-process tests).
    pub fn spawn(self) -> (SocketAddr, Arc<StandinState>) {
        let addr = self.local_addr();
        let state = self.state.clone();
        std::thread::spawn(move || self.serve());
        (addr, state)
    }
}

/// Shared `main` of both binaries: `--listen ADDR [--pin-delay-ms N] [--kubo-port P]`.
pub fn main_for(kind: Kind) {
    let args: Vec<String> = std::env::args().collect();
    let mut listen = "127.0.0.1:0".to_string();
    let mut delay = 0u64;
    let mut kubo_port = 5001u16;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--listen" if i + 1 < args.len() => {
                listen = args[i + 1].clone();
                i += 2;
            }
            "--pin-delay-ms" if i + 1 < args.len() => {
                delay = args[i + 1].parse().unwrap_or(0);
                i += 2;
            }
            "--kubo-port" if i + 1 < args.len() => {
                kubo_port = args[i + 1].parse().unwrap_or(5001);
                i += 2;
            }
            other => {
                eprintln!("usage: {} --listen 127.0.0.1:PORT [--pin-delay-ms N] [--kubo-port P] (unknown argument {:?})", args[0], other);
                std::process::exit(2);
            }
        }
    }
    let server = match Server::bind_with(&listen, kind, delay, kubo_port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on {}: {}", listen, e);
            std::process::exit(1);
        }
    };
    use std::io::Write;
    println!("listening {}", server.local_addr());
    let _ = std::io::stdout().flush();
    server.serve();
}
