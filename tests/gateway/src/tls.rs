//! A plain-text door to the Gateway's HTTPS listener: a local port whose every connection is
//! carried over TLS (SNI: the domain, verified against the test certificate) to Envoy. The
//! end-to-end tests' raw HTTP/1.0, 1.1 and 2 clients then speak to the HTTPS listener as they
//! are, byte for byte. `alpn` picks the protocol the TLS handshake offers (`h2` for HTTP/2).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct Tunnel {
    pub port: u16,
}

/// A TLS client configuration trusting only `ca_pem`.
pub fn client_config(ca_pem: &[u8], alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.expect("PEM certificate")).expect("trust the test certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Arc::new(cfg)
}

impl Tunnel {
    pub fn spawn(to: SocketAddr, domain: &str, cfg: Arc<rustls::ClientConfig>) -> Tunnel {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let name = ServerName::try_from(domain.to_string()).expect("server name");
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (cfg, name) = (cfg.clone(), name.clone());
                std::thread::spawn(move || {
                    let _ = carry(c, to, name, cfg);
                });
            }
        });
        Tunnel { port }
    }
}

/// Opens one TLS connection and returns the negotiated ALPN protocol (or the handshake error).
pub fn handshake(to: SocketAddr, domain: &str, cfg: Arc<rustls::ClientConfig>) -> Result<Option<String>, String> {
    let name = ServerName::try_from(domain.to_string()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(to).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    Ok(conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()))
}

fn carry(plain: TcpStream, to: SocketAddr, name: ServerName<'static>, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<()> {
    let mut c = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    // Unbounded: each piece of plaintext is encrypted and sent at once (below), so what rustls
    // holds is one read's worth; its default limit would refuse a piece mid-upload.
    c.set_buffer_limit(None);
    let conn = Arc::new(Mutex::new(c));
    let tls = TcpStream::connect(to)?;
    let out = Arc::new(Mutex::new(tls.try_clone()?));
    let mut plain_w = plain.try_clone()?;
    send_tls(&conn, &out)?;
    // Envoy -> client.
    let (c2, o2, mut tls_r) = (conn.clone(), out.clone(), tls.try_clone()?);
    let closer = plain.try_clone()?;
    let down = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = tls_r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let mut got = Vec::new();
            {
                let mut c = c2.lock().unwrap();
                c.read_tls(&mut &buf[..n])?;
                c.process_new_packets().map_err(std::io::Error::other)?;
                match c.reader().read_to_end(&mut got) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            send_tls(&c2, &o2)?;
            if !got.is_empty() {
                plain_w.write_all(&got)?;
            }
        }
        let _ = plain_w.shutdown(std::net::Shutdown::Write);
        Ok(())
    });
    // Client -> Envoy.
    let up = (|| -> std::io::Result<()> {
        let mut plain_r = plain;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = plain_r.read(&mut buf)?;
            if n == 0 {
                conn.lock().unwrap().send_close_notify();
                return send_tls(&conn, &out);
            }
            conn.lock().unwrap().writer().write_all(&buf[..n])?;
            send_tls(&conn, &out)?;
        }
    })();
    if up.is_err() {
        // The client must see the failure, not wait on a door that no longer carries.
        let _ = closer.shutdown(std::net::Shutdown::Both);
        let _ = tls.shutdown(std::net::Shutdown::Both);
    }
    let _ = down.join();
    up
}

/// Sends what rustls has to send. The bytes are taken under the connection's lock and written
/// outside it (a blocked write must not stop the other direction: Envoy stops reading an
/// upload while the client is not reading the answer), in the order rustls made them (the
/// socket's lock is taken before the connection's is released).
fn send_tls(conn: &Mutex<rustls::ClientConnection>, out: &Mutex<TcpStream>) -> std::io::Result<()> {
    let mut pending = Vec::new();
    let sock;
    {
        let mut c = conn.lock().unwrap();
        while c.wants_write() {
            c.write_tls(&mut pending)?;
        }
        if pending.is_empty() {
            return Ok(());
        }
        sock = out.lock().unwrap();
    }
    (&*sock).write_all(&pending)
}
