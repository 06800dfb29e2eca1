//! Request classification and guarding.
//!
//! [`classify`] maps a request (method, raw `:path`, headers) to a
//! [`Decision`]: a backend to mark in `x-ipfs-edge-backend`, or a refusal
//! carrying Kubo's error JSON. Default deny: only what the policy lists
//! reaches a backend.

pub mod auth;
pub mod config;
pub mod native_read;
pub mod tables;
pub mod target;

pub use auth::{bearer_digest, plain_text_warning, AuthResult, Credentials};
pub use config::{Access, PathPrefix, Policy};
pub use target::{parse_target, Target};

use tables::{Seg, CID_ARG_COMMANDS, REST_ROUTES};

use crate::backend::Backend;
use crate::kubo::{self, ErrorCode};

/// Method-override headers. No backend here honours them, but a proxy or
/// framework added later might: a request carrying one is refused.
pub const METHOD_OVERRIDE_HEADERS: &[&str] =
    &["x-http-method-override", "x-http-method", "x-method-override"];

/// A refusal sent from the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    /// `Allow` header value for 405.
    pub allow: Option<&'static str>,
    /// Whether to send a `WWW-Authenticate` challenge (401).
    pub challenge: bool,
    /// The credential's outcome when this refusal is about one (metrics).
    pub credential: Option<AuthResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Route {
        backend: Backend,
        /// Remove `Authorization` before forwarding (it was for the edge).
        strip_authorization: bool,
        /// A credential was required and accepted (metrics).
        credential: bool,
    },
    Refuse(Refusal),
    /// Under a platform path: neither refused nor marked, so the route the
    /// platform attached for it (cert-manager's HTTP-01 solver) answers, and
    /// without one, the route table's refusal of unmarked requests.
    Platform,
}

impl Decision {
    pub fn backend(&self) -> Option<Backend> {
        match self {
            Decision::Route { backend, .. } => Some(*backend),
            Decision::Refuse(_) | Decision::Platform => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Decision::Route { .. } | Decision::Platform => None,
            Decision::Refuse(r) => Some(r.status),
        }
    }
}

/// What the router reads of a request. Header names are lowercase (as Envoy
/// gives them); values are bytes because HTTP allows non-UTF-8 ones.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl Request<'_> {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }
}

const ALLOW_RPC: &str = kubo::RPC_METHODS;
const ALLOW_GATEWAY: &str = "GET, HEAD, OPTIONS";
const ALLOW_HEALTH: &str = "GET, HEAD";

fn refuse(status: u16, message: impl Into<String>) -> Decision {
    Decision::Refuse(Refusal {
        status,
        message: message.into(),
        allow: None,
        challenge: false,
        credential: None,
    })
}

fn method_not_allowed(allow: &'static str) -> Decision {
    Decision::Refuse(Refusal {
        status: 405,
        message: "405 - Method Not Allowed".into(),
        allow: Some(allow),
        challenge: false,
        credential: None,
    })
}

/// Classifies one request under `policy`.
pub fn classify(policy: &Policy, req: &Request<'_>) -> Decision {
    // Methods are case-sensitive tokens (RFC 9110); `get` is not GET, and
    // only upper-case methods are ever routed.
    let method = req.method;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return refuse(400, "invalid method");
    }
    for h in METHOD_OVERRIDE_HEADERS {
        if !req.header_values(h).is_empty() {
            return refuse(400, format!("{h} is not accepted"));
        }
    }
    let target = match parse_target(req.path) {
        Ok(t) => t,
        Err(msg) => return refuse(400, msg),
    };
    // On the decoded segments, as every other rule: an encoded or
    // dot-segment path is refused above or judged where it really points.
    if policy.platform_paths.iter().any(|p| p.covers(&target.segments)) {
        return Decision::Platform;
    }
    let segs: Vec<&str> = target.segments.iter().map(String::as_str).collect();
    let canonical = target.canonical_path();

    if policy.health_paths.contains(&canonical) {
        return match method {
            "GET" | "HEAD" => route(policy, Backend::Health),
            _ => method_not_allowed(ALLOW_HEALTH),
        };
    }

    match segs.as_slice() {
        ["api", "v0", cmd @ ..] => classify_rpc(policy, req, method, cmd, &target),
        // POST /ipfs/gc is the cluster's RepoGC; a read of it is the gateway,
        // which refuses "gc" as a CID.
        ["ipfs", "gc"] if !matches!(method, "GET" | "HEAD") => {
            classify_rest(policy, req, method, &segs)
        }
        ["ipfs" | "ipns", ..] => classify_gateway(policy, req, method, &segs),
        _ => classify_rest(policy, req, method, &segs),
    }
}

fn route(policy: &Policy, backend: Backend) -> Decision {
    Decision::Route {
        backend,
        strip_authorization: !policy.forward_authorization,
        credential: false,
    }
}

/// Applies `access` for a request otherwise bound for `backend`.
fn gate(policy: &Policy, req: &Request<'_>, access: config::Access, backend: Backend) -> Decision {
    match access {
        Access::Public => route(policy, backend),
        Access::Deny => refuse(403, "403 - Forbidden: not allowed at this endpoint"),
        Access::Credential => {
            let values = req.header_values("authorization");
            match policy.credentials.check(&values) {
                AuthResult::Valid => Decision::Route {
                    backend,
                    strip_authorization: !policy.forward_authorization,
                    credential: true,
                },
                AuthResult::Missing => Decision::Refuse(Refusal {
                    status: 401,
                    message: "401 - Unauthorized: credentials required".into(),
                    allow: None,
                    challenge: true,
                    credential: Some(AuthResult::Missing),
                }),
                AuthResult::Invalid => Decision::Refuse(Refusal {
                    status: 401,
                    message: "401 - Unauthorized: invalid credentials".into(),
                    allow: None,
                    challenge: true,
                    credential: Some(AuthResult::Invalid),
                }),
            }
        }
    }
}

fn classify_rpc(
    policy: &Policy,
    req: &Request<'_>,
    method: &str,
    cmd: &[&str],
    target: &Target,
) -> Decision {
    // Kubo reads the last path element as an argument when it is not a
    // subcommand (`/api/v0/cat/<cid>`). Taking it as one only when it is a
    // CID keeps `/api/v0/version/deps` from passing as `version`: no Kubo
    // subcommand is named like a CID.
    let full = cmd.join("/");
    let (name, path_arg) = match policy.rpc.get(&full) {
        Some(_) => (full, None),
        None => match cmd.split_last() {
            Some((last, head)) if !head.is_empty() && is_cid(last) => (head.join("/"), Some(*last)),
            _ => (full, None),
        },
    };
    let Some(&access) = policy.rpc.get(&name) else {
        return refuse(403, format!("403 - Forbidden: command {name:?} is not allowed at this endpoint"));
    };
    let backend = if policy.via_proxy(&name) {
        Backend::Proxy
    } else {
        Backend::Kubo
    };
    match method {
        // A CORS preflight carries no credentials; the backend answers it.
        "OPTIONS" => return route(policy, backend),
        "POST" => {}
        _ => return method_not_allowed(ALLOW_RPC),
    }
    let decision = gate(policy, req, access, backend);
    if decision.backend().is_none() {
        return decision;
    }
    if CID_ARG_COMMANDS.contains(&name.as_str()) {
        for arg in path_arg.into_iter().chain(target.query_values("arg")) {
            if let Err(msg) = check_content_path(arg) {
                return refuse(400, msg);
            }
        }
    }
    decision
}

fn classify_gateway(policy: &Policy, req: &Request<'_>, method: &str, segs: &[&str]) -> Decision {
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return method_not_allowed(ALLOW_GATEWAY);
    }
    let decision = gate(policy, req, policy.gateway, Backend::Gateway);
    if decision.backend().is_none() {
        return decision;
    }
    let Some(root) = segs.get(1) else {
        return refuse(400, format!("missing root after /{}/", segs[0]));
    };
    let ok = if segs[0] == "ipfs" {
        is_cid(root)
    } else {
        is_ipns_name(root)
    };
    if !ok {
        let what = if segs[0] == "ipfs" { "CID" } else { "IPNS name" };
        return refuse(400, format!("invalid {what} {root:?}"));
    }
    decision
}

fn classify_rest(policy: &Policy, req: &Request<'_>, method: &str, segs: &[&str]) -> Decision {
    let shaped: Vec<usize> = REST_ROUTES
        .iter()
        .enumerate()
        .filter(|(_, r)| shape_matches(r.pattern, segs))
        .map(|(i, _)| i)
        .collect();
    if shaped.is_empty() {
        return refuse(404, "404 page not found");
    }
    if method == "OPTIONS" {
        return route(policy, Backend::Rest);
    }
    // First match in registration order, as gorilla/mux picks it.
    let Some(&i) = shaped.iter().find(|&&i| REST_ROUTES[i].method == method) else {
        return method_not_allowed(allow_for(&shaped));
    };
    let r = &REST_ROUTES[i];
    let decision = gate(policy, req, policy.rest[i], Backend::Rest);
    if decision.backend().is_none() {
        return decision;
    }
    for (seg, value) in r.pattern.iter().zip(segs.iter()) {
        match seg {
            Seg::Cid if !is_cid(value) => return refuse(400, format!("invalid CID {value:?}")),
            Seg::KeyTypeRest => {
                let rest = &segs[r.pattern.len() - 1..];
                let p = format!("/{}", rest.join("/"));
                if let Err(msg) = check_content_path(&p) {
                    return refuse(400, msg);
                }
            }
            _ => {}
        }
    }
    decision
}

fn shape_matches(pattern: &[Seg], segs: &[&str]) -> bool {
    let last_rest = matches!(pattern.last(), Some(Seg::KeyTypeRest));
    if last_rest {
        if segs.len() < pattern.len() + 1 {
            return false;
        }
    } else if segs.len() != pattern.len() {
        return false;
    }
    pattern.iter().zip(segs).all(|(p, s)| match p {
        Seg::Lit(l) => l == s,
        Seg::Cid | Seg::Any => true,
        Seg::KeyTypeRest => matches!(*s, "ipfs" | "ipns" | "ipld"),
    })
}

/// `Allow` for the routes sharing one path shape (the set is small and
/// fixed, so the strings are too).
fn allow_for(shaped: &[usize]) -> &'static str {
    let has = |m: &str| shaped.iter().any(|&i| REST_ROUTES[i].method == m);
    match (has("GET"), has("POST"), has("DELETE")) {
        (true, true, true) => "GET, POST, DELETE, OPTIONS",
        (true, true, false) => "GET, POST, OPTIONS",
        (true, false, true) => "GET, DELETE, OPTIONS",
        (true, false, false) => "GET, OPTIONS",
        (false, true, true) => "POST, DELETE, OPTIONS",
        (false, true, false) => "POST, OPTIONS",
        (false, false, true) => "DELETE, OPTIONS",
        (false, false, false) => "OPTIONS",
    }
}

/// A CID, checked with the `cid` crate (CIDv0 base58btc or any multibase
/// CIDv1).
pub fn is_cid(s: &str) -> bool {
    // The crate accepts a CIDv0 only as 46 base58 characters starting with
    // "Qm"; bound the length first so a huge segment costs nothing.
    !s.is_empty() && s.len() <= 256 && cid::Cid::try_from(s).is_ok()
}

/// An IPNS name: a key as CID or base58 peer ID, or a DNSLink domain.
pub fn is_ipns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// An argument naming content: `<cid>[/path]`, `/ipfs/<cid>[/path]`,
/// `/ipld/<cid>[/path]` or `/ipns/<name>[/path]`.
pub fn check_content_path(arg: &str) -> Result<(), String> {
    let parts: Vec<&str> = arg.split('/').collect();
    let (root, ns) = match parts.as_slice() {
        ["", ns @ ("ipfs" | "ipld" | "ipns"), root, ..] => (*root, *ns),
        [root, ..] if !root.is_empty() => (*root, "ipfs"),
        _ => return Err(format!("invalid path {arg:?}")),
    };
    if parts.iter().skip(1).any(|p| *p == "." || *p == "..") {
        return Err(format!("dot segment in argument {arg:?}"));
    }
    let ok = if ns == "ipns" { is_ipns_name(root) } else { is_cid(root) };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid CID {root:?} in argument"))
    }
}

/// The `Code` of a refusal's error JSON: ErrClient for 400, the forbidden
/// code for 401/403, ErrNormal otherwise (what Kubo's own client reads for
/// its plain-text 404 and 405).
pub fn error_code(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::Client,
        401 | 403 => ErrorCode::Forbidden,
        _ => ErrorCode::Normal,
    }
}

/// Headers and body of a refusal, as sent. A method other than POST or
/// OPTIONS on the RPC API gets Kubo's own answer byte for byte
/// (go-ipfs-cmds `http.Error`, plain text, behind rs/cors), so a Kubo
/// client cannot tell the edge from Kubo, as the add filter answers it;
/// every other refusal is Kubo's error JSON.
pub fn refusal_response(policy: &Policy, r: &Refusal) -> (Vec<(&'static str, String)>, Vec<u8>) {
    if r.status == 405 && r.allow == Some(kubo::RPC_METHODS) {
        return kubo::method_not_allowed();
    }
    (refusal_headers(policy, r), kubo::error_body(error_code(r.status), &r.message))
}

/// Headers of a refusal answered with Kubo's error JSON.
pub fn refusal_headers(policy: &Policy, r: &Refusal) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
        ("cache-control", "no-store".to_string()),
    ];
    if let Some(allow) = r.allow {
        h.push(("allow", allow.to_string()));
    }
    if r.challenge {
        let mut c = Vec::new();
        if policy.credentials.has_bearer() {
            c.push("Bearer realm=\"ipfs-edge\"");
        }
        if policy.credentials.has_basic() || c.is_empty() {
            c.push("Basic realm=\"ipfs-edge\", charset=\"UTF-8\"");
        }
        h.push(("www-authenticate", c.join(", ")));
    }
    h
}
