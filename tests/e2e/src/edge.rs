//! The whole edge under test: manifests/envoy/envoy.yaml (health, router,
//! add_response) in front of the real daemons of a local cluster's peer 0,
//! through a recording tap per backend, each named as the router marks it
//! (`gateway`, `proxy`, `kubo`, `rest`).
//! Requests go out over raw HTTP/1.0, HTTP/1.1 or HTTP/2 (h2c).

use crate::envoy::{Envoy, Patch};
use crate::recorder::{Recorder, Seen};

pub const CONFIG: &str = "manifests/envoy/envoy.yaml";

pub struct EdgeStack {
    pub envoy: Envoy,
    pub gateway: Recorder,
    pub proxy: Recorder,
    pub kubo: Recorder,
    pub rest: Recorder,
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http10,
    Http11,
    Http2,
}

impl Proto {
    pub fn parse(s: &str) -> Proto {
        match s {
            "1.0" => Proto::Http10,
            "1.1" => Proto::Http11,
            "2" => Proto::Http2,
            other => panic!("unknown protocol {other:?}"),
        }
    }
}

/// One request as the tests describe it: the target is sent byte for byte.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub proto: Proto,
}

impl Req {
    pub fn new(method: &str, target: &str) -> Req {
        Req { method: method.into(), target: target.into(), headers: Vec::new(), proto: Proto::Http11 }
    }

    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn over(mut self, proto: Proto) -> Req {
        self.proto = proto;
        self
    }
}

impl EdgeStack {
    /// Envoy with the manifest's filters, the router and health plugin
    /// configurations given (JSON), and the four backends recording.
    pub fn start(router: &str, health: &str) -> EdgeStack {
        Self::start_patched(router, health, Vec::new())
    }

    /// The same with more patches of the manifest.
    pub fn start_patched(router: &str, health: &str, extra: Vec<Patch>) -> EdgeStack {
        // Peer 0 of the test binary's local cluster, a tap in front of each
        // of its daemons.
        let p = &crate::real::cluster().peers[0];
        let (gateway, proxy, kubo, rest) =
            (Recorder::tap("gateway", p.gateway()), Recorder::tap("proxy", p.proxy()), Recorder::tap("kubo", p.kubo_rpc()), Recorder::tap("rest", p.rest()));
        let mut patches = vec![
            Patch::ClusterPort("cluster_rest", rest.port()),
            Patch::ClusterPort("cluster_proxy", proxy.port()),
            Patch::ClusterPort("kubo_rpc", kubo.port()),
            Patch::ClusterPort("gateway", gateway.port()),
            Patch::FilterConfig("router", router.into()),
            Patch::FilterConfig("health", health.into()),
        ];
        // The manifest runs health on `/`: each other path it is configured
        // for gets its route (the filter runs only where a route turns it on).
        let config: serde_json::Value = serde_json::from_str(health).unwrap_or_default();
        let paths = config["paths"].as_array().into_iter().flatten().filter_map(|p| p.as_str());
        patches.extend(paths.filter(|p| *p != "/").map(|p| Patch::ExactRouteLike("/", p.to_string())));
        patches.extend(extra);
        let envoy = Envoy::start(CONFIG, &patches);
        EdgeStack { envoy, gateway, proxy, kubo, rest }
    }

    pub fn backends(&self) -> [&Recorder; 4] {
        [&self.gateway, &self.proxy, &self.kubo, &self.rest]
    }

    /// What reached each backend since the last call, by backend name.
    pub fn take_seen(&self) -> Vec<(String, Seen)> {
        let mut out = Vec::new();
        for b in self.backends() {
            for s in b.take() {
                out.push((b.name().to_string(), s));
            }
        }
        out
    }

    /// Sends `req` through Envoy. `Err` when Envoy closed or reset instead
    /// of answering.
    pub fn send(&self, req: &Req) -> Result<Answer, String> {
        send(self.envoy.port, req)
    }
}

/// The host name the tests' requests name.
pub const HOST: &str = "edge.test";

/// manifests/envoy/envoy.yaml as the edge under test of the shared cases: one listener
/// speaking HTTP/1 and h2c, any host.
impl crate::cases::Edge for EdgeStack {
    fn port(&self, _: Proto) -> u16 {
        self.envoy.port
    }

    fn host(&self) -> String {
        HOST.into()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.port)
    }

    fn ca_file(&self) -> Option<std::path::PathBuf> {
        None
    }

    fn max_upload_bytes(&self) -> u64 {
        0
    }

    fn log(&self) -> String {
        self.envoy.log()
    }
}

impl crate::cases::health::TappedEdge for EdgeStack {
    fn taps(&self) -> Vec<&Recorder> {
        self.backends().to_vec()
    }
}

/// Sends `req` to `port` over its protocol, for [`HOST`].
pub fn send(port: u16, req: &Req) -> Result<Answer, String> {
    send_to(port, HOST, req)
}

/// Sends `req` to `port` over its protocol, for `host`. The HTTP/1 forms add `Host`,
/// `Content-Length: 0` for POST/PUT/PATCH and `Connection: close`; HTTP/2
/// sends an absolute-form target as `:authority` + `:path`.
pub fn send_to(port: u16, host: &str, req: &Req) -> Result<Answer, String> {
    let needs_length = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH");
    match req.proto {
        Proto::Http10 | Proto::Http11 => {
            let v = if req.proto == Proto::Http10 { "1.0" } else { "1.1" };
            let mut raw = format!("{} {} HTTP/{v}\r\nHost: {host}\r\n", req.method, req.target);
            for (k, val) in &req.headers {
                raw.push_str(&format!("{k}: {val}\r\n"));
            }
            if needs_length {
                raw.push_str("Content-Length: 0\r\n");
            }
            raw.push_str("Connection: close\r\n\r\n");
            exchange_h1(port, raw.as_bytes(), req.method == "HEAD")
        }
        Proto::Http2 => {
            let (authority, path) = match req.target.split_once("://") {
                Some((_, rest)) => match rest.find('/') {
                    Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
                    None => (rest.to_string(), "/".to_string()),
                },
                None => (host.to_string(), req.target.clone()),
            };
            let mut headers = req.headers.clone();
            if needs_length {
                headers.push(("content-length".into(), "0".into()));
            }
            crate::h2::exchange(port, &req.method, &authority, path.as_bytes(), &headers, b"")
        }
    }
}

/// One HTTP/1 exchange, read until the answer is complete by its own
/// framing rather than until the connection closes: after a local reply
/// Envoy waits for the client to close first (`delayed_close_timeout`, 1 s).
/// A HEAD answer's `Content-Length` describes a body that is not sent.
fn exchange_h1(port: u16, raw: &[u8], head_only: bool) -> Result<Answer, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).map_err(|e| e.to_string())?;
    s.write_all(raw).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("{e} after {:?}", String::from_utf8_lossy(&got)))?;
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            if n == 0 {
                return Err(format!("closed before a response head: {:?}", String::from_utf8_lossy(&got)));
            }
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        let framed = head.contains("\r\ncontent-length:") || head.contains("\r\ntransfer-encoding: chunked");
        if head_only || n == 0 || framed {
            if head_only {
                let original = String::from_utf8_lossy(&got[..end]).into_owned();
                let mut lines = original.split("\r\n");
                let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).ok_or("no status")?;
                let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
                return Ok(Answer { status, headers, body: got[end + 4..].to_vec() });
            }
            if let Some(r) = crate::http::parse(&got) {
                return Ok(Answer {
                    status: r.status,
                    headers: r.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
                    body: r.body,
                });
            }
            if n == 0 {
                return Err(format!("unparseable response: {:?}", String::from_utf8_lossy(&got)));
            }
        }
    }
}
