//! Responses the filter gives itself, shaped exactly as Kubo gives them.

use crate::kubo::{self, ErrorCode};

/// A complete local response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Kubo sends its `Server` header on this answer (errors from a command
    /// do; refusals before the command is parsed do not).
    pub server: bool,
}

/// The headers go-ipfs-cmds puts on every command response before the
/// status (http/responseemitter.go `doPreamble`).
pub const EXPOSED: &str = "X-Stream-Output, X-Chunked-Output, X-Content-Length";

impl Reply {
    /// An error returned by a command before its first event:
    /// `sendErr` with `cmds.ErrNormal` (status 500).
    pub fn kubo_error(message: &str) -> Reply {
        Reply {
            status: 500,
            headers: vec![
                ("access-control-allow-headers", EXPOSED.into()),
                ("access-control-expose-headers", EXPOSED.into()),
                ("content-type", "application/json".into()),
                ("trailer", "X-Stream-Error".into()),
                ("vary", "Origin".into()),
            ],
            body: kubo::error_body(ErrorCode::Normal, message),
            server: true,
        }
    }

    /// An upload over the configured limit. Kubo has no limit, so there is
    /// no Kubo answer to copy: its error shape, with the status a proxy
    /// gives (413).
    pub fn upload_too_large(limit: u64) -> Reply {
        let mut r = Self::kubo_error(&format!("upload larger than this gateway's limit of {limit} bytes"));
        r.status = 413;
        r
    }

    /// An only-hash add when no route to Kubo is configured (or the host
    /// would not mark it): Kubo's error, since the cluster proxy would pin.
    pub fn only_hash_refused() -> Reply {
        Self::kubo_error("only-hash is not supported when adding to cluster")
    }

    /// The headers as sent: with `Server: server` when Kubo sends it on this
    /// answer (and `server` is not empty), sorted by name as Go writes a
    /// handler's headers.
    pub fn headers_as_sent<'a>(&'a self, server: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if self.server && !server.is_empty() {
            headers.push(("server", server));
        }
        headers.sort_by(|a, b| a.0.cmp(b.0));
        headers
    }

    /// A request go-ipfs-cmds refuses while parsing it: `http.Error(w,
    /// err.Error(), 400)` (http/handler.go), plain text.
    pub fn kubo_bad_request(message: &str) -> Reply {
        let (headers, body) = kubo::http_error(message, &[]);
        Reply { status: 400, headers, body, server: false }
    }

    /// Any method but POST and OPTIONS on the RPC API.
    pub fn kubo_method_not_allowed() -> Reply {
        let (headers, body) = kubo::method_not_allowed();
        Reply { status: 405, headers, body, server: false }
    }

    /// OPTIONS without CORS preflight headers: `204` and the allowed methods.
    pub fn kubo_options() -> Reply {
        Reply {
            status: 204,
            headers: vec![("allow", kubo::RPC_METHODS.into()), ("vary", "Origin".into())],
            body: vec![],
            server: false,
        }
    }
}
