//! Responses the filter gives itself, shaped exactly as Kubo gives them.

use super::gojson;

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
            body: gojson::kubo_error_body(message),
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

    /// A request go-ipfs-cmds refuses while parsing it: `http.Error(w,
    /// err.Error(), 400)` (http/handler.go), plain text.
    pub fn kubo_bad_request(message: &str) -> Reply {
        Self::plain(400, message, vec![])
    }

    /// Any method but POST and OPTIONS on the RPC API (http/handler.go,
    /// `AllowGet` is false in Kubo).
    pub fn kubo_method_not_allowed() -> Reply {
        Self::plain(405, "405 - Method Not Allowed", vec![("allow", "OPTIONS, POST".into())])
    }

    /// OPTIONS without CORS preflight headers: `204` and the allowed methods.
    pub fn kubo_options() -> Reply {
        Reply { status: 204, headers: vec![("allow", "OPTIONS, POST".into()), ("vary", "Origin".into())], body: vec![], server: false }
    }

    /// Go's `http.Error` (text body plus newline, nosniff) behind rs/cors,
    /// which adds `Vary: Origin` to every actual request.
    fn plain(status: u32, message: &str, mut headers: Vec<(&'static str, String)>) -> Reply {
        headers.push(("content-type", "text/plain; charset=utf-8".into()));
        headers.push(("vary", "Origin".into()));
        headers.push(("x-content-type-options", "nosniff".into()));
        Reply { status, headers, body: format!("{message}\n").into_bytes(), server: false }
    }
}
