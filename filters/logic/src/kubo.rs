//! Kubo's own answers, byte for byte, for the filters that answer in its
//! place (router refusals, add_response's local replies): its error JSON and
//! the plain-text refusals of its HTTP handler.

use crate::gojson;

/// The methods Kubo's RPC API takes (go-ipfs-cmds http/handler.go; Kubo
/// leaves `AllowGet` false).
pub const RPC_METHODS: &str = "OPTIONS, POST";

/// go-ipfs-cmds `ErrorType`, the `Code` of the error JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `ErrNormal`: a command failed.
    Normal = 0,
    /// `ErrClient`: the request was wrong.
    Client = 1,
    /// `ErrForbidden`: the client may not do this (go-ipfs-cmds error.go,
    /// after `ErrImplementation` and `ErrRateLimited`).
    Forbidden = 4,
}

/// Kubo's error body: `cmds.Error` encoded by a `json.Encoder`, so fields
/// in struct order and the trailing newline (go-ipfs-cmds
/// http/responseemitter.go `sendErr`).
pub fn error_body(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 40);
    out.extend_from_slice(b"{\"Message\":");
    gojson::push_string(&mut out, message.as_bytes());
    out.extend_from_slice(format!(",\"Code\":{},\"Type\":\"error\"}}\n", code as u8).as_bytes());
    out
}

/// A plain-text refusal of Kubo's HTTP handler: Go's `http.Error` (text
/// plus newline, nosniff) behind rs/cors, which adds `Vary: Origin` to every
/// actual request. Headers sorted by name, as Go writes them; `extra` are
/// the handler's own (names lowercase).
pub fn http_error(message: &str, extra: &[(&'static str, &str)]) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut headers: Vec<(&'static str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
    headers.push(("content-type", "text/plain; charset=utf-8".into()));
    headers.push(("vary", "Origin".into()));
    headers.push(("x-content-type-options", "nosniff".into()));
    headers.sort_by(|a, b| a.0.cmp(b.0));
    (headers, format!("{message}\n").into_bytes())
}

/// Any method but POST and OPTIONS on the RPC API: `405` and its plain text.
pub fn method_not_allowed() -> (Vec<(&'static str, String)>, Vec<u8>) {
    http_error("405 - Method Not Allowed", &[("allow", RPC_METHODS)])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn error_body_is_kubos() {
        assert_eq!(
            error_body(ErrorCode::Normal, "unsupported multibase encoding: x<"),
            b"{\"Message\":\"unsupported multibase encoding: x\\u003c\",\"Code\":0,\"Type\":\"error\"}\n".to_vec()
        );
        assert_eq!(error_body(ErrorCode::Forbidden, "no"), b"{\"Message\":\"no\",\"Code\":4,\"Type\":\"error\"}\n".to_vec());
    }

    #[test]
    fn method_not_allowed_is_kubos() {
        let (headers, body) = method_not_allowed();
        let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["allow", "content-type", "vary", "x-content-type-options"]);
        assert_eq!(headers[0].1, "OPTIONS, POST");
        assert_eq!(body, b"405 - Method Not Allowed\n");
    }
}
