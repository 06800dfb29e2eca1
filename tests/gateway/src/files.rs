//! The filter server, as the cluster runs it: busybox `httpd -f -h /www` serving the three
//! `.wasm` files over plain HTTP (manifests/kubernetes/edge/filter-server.yaml). Here a small
//! server of the test's own with httpd's behaviour for what Envoy Gateway asks: `GET /<file>`
//! answers 200 with `Content-Length` and closes; a missing file is 404.
//!
//! It listens on the address the rendered URL names (port 80 of the filter Service, resolved
//! to a loopback address of its own by the namespace's /etc/hosts). Envoy's Gateway listener
//! binds port 80 on every address too; both sockets set SO_REUSEPORT, and Linux hands a
//! connection to the listener bound to its exact address before a wildcard one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct FileServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    /// Path -> number of GETs answered.
    served: Mutex<BTreeMap<String, u32>>,
    stop: AtomicBool,
}

impl FileServer {
    pub fn spawn(addr: SocketAddr, root: PathBuf) -> std::io::Result<FileServer> {
        let l = reuseport_listener(addr)?;
        let shared = Arc::new(Shared { root, served: Mutex::new(BTreeMap::new()), stop: AtomicBool::new(false) });
        let s = shared.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(c) = c else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(c, &s);
                });
            }
        });
        Ok(FileServer { addr, shared })
    }

    /// How many times each path was fetched.
    pub fn served(&self) -> BTreeMap<String, u32> {
        self.shared.served.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

fn serve(c: std::net::TcpStream, s: &Shared) -> std::io::Result<()> {
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut w = c;
    let file = path.trim_start_matches('/');
    let body = if method == "GET" && !file.is_empty() && !file.contains('/') && !file.starts_with('.') {
        std::fs::read(s.root.join(file)).ok()
    } else {
        None
    };
    match body {
        Some(b) => {
            *s.served.lock().unwrap().entry(path.to_string()).or_default() += 1;
            write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())?;
            w.write_all(&b)?;
        }
        None => {
            let b = "<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD>\n<BODY><H1>404 Not Found</H1>\nThe requested URL was not found\n</BODY></HTML>\n";
            write!(w, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len())?;
        }
    }
    w.flush()
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let SocketAddr::V4(a) = addr else { return Err(std::io::Error::other("IPv4 only")) };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            libc::setsockopt(fd, libc::SOL_SOCKET, opt, &one as *const _ as *const libc::c_void, std::mem::size_of::<libc::c_int>() as u32);
        }
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
            sin_zero: [0; 8],
        };
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32) != 0
            || libc::listen(fd, 128) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpListener::from_raw_fd(fd))
    }
}

/// The filter server's own loopback address (Envoy holds port 80 on every address).
pub const FILES_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 2);
/// Envoy Gateway's Wasm cache, as its generated `wasm_cluster` names it (a Kubernetes
/// Service name even in standalone mode).
pub const EG_WASM_HOST: &str = "envoy-gateway.envoy-gateway-system.svc.cluster.local";

/// Serves the filters where the render's Wasm URLs point, inside the namespace
/// ([`crate::ns`]): each URL's host resolves to [`FILES_IP`] as the cluster's DNS resolves
/// it, Envoy Gateway's cache host to the loopback, and a server on [`FILES_IP`] and the
/// URLs' port hands out `e2e::wasm_dir()`.
pub fn serve_rendered(rendered: &[serde_json::Value]) -> FileServer {
    let mut files_port = None;
    for (_, url, _) in crate::render::wasm_sources(rendered) {
        let host_port = url.strip_prefix("http://").expect("the deployer serves the filters over http").split('/').next().unwrap();
        let (host, port) = host_port.split_once(':').map_or((host_port, 80), |(h, p)| (h, p.parse().unwrap()));
        crate::ns::add_host(host, FILES_IP);
        files_port = Some(port);
    }
    crate::ns::add_host(EG_WASM_HOST, std::net::Ipv4Addr::LOCALHOST);
    FileServer::spawn(SocketAddr::from((FILES_IP, files_port.expect("a wasm URL"))), e2e::wasm_dir()).expect("filter server")
}
