//! One request through add_response, as a state machine: every decision the
//! filter makes on a callback (which requests it takes, methods, the upload
//! limit, the only-hash detour, part counting, early refusals, when the
//! answer is rewritten) is made here. The cdylib reads what a step asks for,
//! hands it over and carries out the answer.

use super::config::AddConfig;
use super::lines::LineCutter;
use super::multipart::{self, Scanner};
use super::query::{self, Destination};
use super::reply::Reply;
use super::response::{kubo_headers, AddResponse};
use crate::backend::Backend;

/// The one path the filter takes (the query aside).
pub const ADD_PATH: &str = "/api/v0/add";

/// What the filter reads of the request headers, as Envoy gives them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHeaders<'a> {
    pub method: Option<&'a [u8]>,
    pub path: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub content_length: Option<&'a [u8]>,
    /// The routing mark (`x-ipfs-edge-backend`) as it arrived.
    pub mark: Option<&'a [u8]>,
}

/// What to do with the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnRequestHeaders {
    /// Not an add this filter takes: nothing to do, now or later.
    Pass,
    /// Answer at the edge; nothing goes upstream.
    Reply(Reply),
    /// Forward, after these edits of the request headers (in field order).
    Forward(Forward),
}

/// The header edits of a forwarded add.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forward {
    /// Remove the routing mark: only this filter may send an add to Kubo,
    /// so any mark but the router's `proxy` goes (`proxy` is the router's
    /// decision for an add, which the routes follow).
    pub drop_mark: bool,
    /// Mark the request for this backend and have Envoy route it again
    /// (only-hash adds to Kubo). When the host refuses, answer
    /// [`Reply::only_hash_refused`] instead.
    pub mark: Option<String>,
    /// The new `:path`: the query rewritten for the cluster proxy.
    pub path: Option<String>,
}

/// What to do with a chunk of the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnRequestBody {
    Continue,
    /// Continue; the upload's structure could not be followed, so progress
    /// names are left as the cluster writes them (worth a log line).
    StructureLost,
    /// Refuse the upload here (Envoy resets the request to the cluster,
    /// which then adds and pins nothing).
    Reply(Reply),
}

/// What to do with a chunk of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OnResponseBody {
    /// The new content of the chunk, if it changed.
    pub replace: Option<Vec<u8>>,
    /// Lines over `max_line_bytes` that passed unchanged in this chunk
    /// (worth a log line and a count).
    pub long_lines: u64,
}

/// The state of one request.
#[derive(Debug, Default)]
pub struct AddFlow {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Not an add through the cluster: nothing to do.
    #[default]
    Untouched,
    /// An only-hash add sent on to Kubo: only its size is watched (bytes
    /// so far), for `max_upload_bytes`.
    Counting(u64),
    Rewriting(Box<Rewrite>),
}

#[derive(Debug)]
struct Rewrite {
    scanner: Option<Scanner>,
    /// Upload bytes seen so far (for `max_upload_bytes`).
    uploaded: u64,
    /// Parts of the upload seen so far.
    parts: u64,
    response: AddResponse,
    cutter: LineCutter,
}

fn text(v: Option<&[u8]>) -> Option<&str> {
    v.and_then(|v| std::str::from_utf8(v).ok())
}

impl AddFlow {
    pub fn new() -> AddFlow {
        AddFlow::default()
    }

    /// Whether the answer is being rewritten (the response callbacks have
    /// work to do).
    pub fn rewriting(&self) -> bool {
        matches!(self.state, State::Rewriting(_))
    }

    pub fn on_request_headers(&mut self, config: &AddConfig, req: &RequestHeaders<'_>) -> OnRequestHeaders {
        let Some(raw_path) = req.path else { return OnRequestHeaders::Pass };
        let path_only = raw_path.split(|&b| b == b'?').next().unwrap_or_default();
        if path_only != ADD_PATH.as_bytes() {
            return OnRequestHeaders::Pass;
        }
        let Ok(path) = std::str::from_utf8(raw_path) else {
            // Not UTF-8: neither Kubo's nor this parser's business to
            // guess; the cluster answers it.
            return OnRequestHeaders::Pass;
        };
        match req.method {
            Some(b"POST") => {}
            Some(b"OPTIONS") => return OnRequestHeaders::Reply(Reply::kubo_options()),
            _ => return OnRequestHeaders::Reply(Reply::kubo_method_not_allowed()),
        }
        let limit = config.max_upload_bytes;
        let declared = text(req.content_length).and_then(|v| v.parse::<u64>().ok());
        if limit > 0 && declared.is_some_and(|n| n > limit) {
            return OnRequestHeaders::Reply(Reply::upload_too_large(limit));
        }
        let drop_mark = req.mark != Some(Backend::Proxy.header_value().as_bytes());
        let content_type = text(req.content_type).unwrap_or_default();
        match query::route(path, content_type, config.refuse_unsupported_options) {
            Destination::Reply(r) => OnRequestHeaders::Reply(r),
            Destination::Kubo => {
                if config.only_hash_backend.is_empty() {
                    return OnRequestHeaders::Reply(Reply::only_hash_refused());
                }
                self.state = State::Counting(0);
                OnRequestHeaders::Forward(Forward { drop_mark, mark: Some(config.only_hash_backend.clone()), path: None })
            }
            Destination::Cluster { path: new_path, request } => {
                let scanner = multipart::boundary(content_type).map(|b| Scanner::new(&b));
                let mut response = AddResponse::new(&request);
                if scanner.is_none() {
                    response.names_lost();
                }
                self.state = State::Rewriting(Box::new(Rewrite {
                    scanner,
                    response,
                    parts: 0,
                    uploaded: 0,
                    cutter: LineCutter::new(config.max_line_bytes),
                }));
                let path = (new_path != path).then_some(new_path);
                OnRequestHeaders::Forward(Forward { drop_mark, mark: None, path })
            }
        }
    }

    /// A chunk of `size` bytes of the upload; `read` fetches it, and is
    /// called only when the upload's structure is still being read (the
    /// upload passes byte for byte either way).
    pub fn on_request_body(
        &mut self,
        config: &AddConfig,
        size: usize,
        end_of_stream: bool,
        read: impl FnOnce() -> Vec<u8>,
    ) -> OnRequestBody {
        let limit = config.max_upload_bytes;
        let rw = match &mut self.state {
            State::Untouched => return OnRequestBody::Continue,
            State::Counting(uploaded) => {
                *uploaded = uploaded.saturating_add(size as u64);
                if limit > 0 && *uploaded > limit {
                    return OnRequestBody::Reply(Reply::upload_too_large(limit));
                }
                return OnRequestBody::Continue;
            }
            State::Rewriting(rw) => rw,
        };
        rw.uploaded = rw.uploaded.saturating_add(size as u64);
        if limit > 0 && rw.uploaded > limit {
            // A chunked upload without Content-Length: cut where it passes
            // the limit.
            return OnRequestBody::Reply(Reply::upload_too_large(limit));
        }
        let Some(scanner) = rw.scanner.as_mut() else { return OnRequestBody::Continue };
        let chunk = if size == 0 { Vec::new() } else { read() };
        let (response, parts) = (&mut rw.response, &mut rw.parts);
        let mut refuse = None;
        scanner.feed(&chunk, |part| {
            // A broken first header block fails Kubo before its first
            // event; later ones fail both mid-stream, alike.
            if *parts == 0 {
                refuse = part.malformed.clone();
            }
            *parts += 1;
            response.on_part(part);
        });
        if let Some(message) = refuse {
            return OnRequestBody::Reply(Reply::kubo_error(&message));
        }
        if end_of_stream && *parts == 0 && !scanner.lost() {
            // Kubo: "expected a file argument"; the cluster v1.1.6 panics
            // and drops the connection.
            return OnRequestBody::Reply(Reply::kubo_error("expected a file argument"));
        }
        if scanner.lost() {
            response.names_lost();
            rw.scanner = None;
            return OnRequestBody::StructureLost;
        }
        if *parts > 0 && !response.needs_upload_structure() {
            // The first part is checked; nothing later changes the answer.
            rw.scanner = None;
        }
        OnRequestBody::Continue
    }

    /// The cluster's response headers (`read` fetches them, called only
    /// while rewriting; `None` when the host has none). Returns the headers
    /// to set instead, or `None` to leave them.
    pub fn on_response_headers(
        &mut self,
        config: &AddConfig,
        read: impl FnOnce() -> Option<Vec<(String, String)>>,
    ) -> Option<Vec<(String, String)>> {
        if !self.rewriting() {
            return None;
        }
        let headers = read()?;
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let streaming = get(":status") == Some("200") && get("x-chunked-output").is_some();
        if !streaming {
            // An answer the cluster gave before streaming (its own error
            // reply): passed as it is.
            self.state = State::Untouched;
            return None;
        }
        Some(kubo_headers(&headers, &config.server))
    }

    /// A chunk of `size` bytes of the answer (`read` fetches it, called only
    /// while rewriting).
    pub fn on_response_body(&mut self, size: usize, end_of_stream: bool, read: impl FnOnce() -> Vec<u8>) -> OnResponseBody {
        let State::Rewriting(rw) = &mut self.state else { return OnResponseBody::default() };
        let buf = if size == 0 { Vec::new() } else { read() };
        let Rewrite { response, cutter, .. } = &mut **rw;
        let long_before = cutter.long_lines;
        let step = cutter.step(&buf, end_of_stream, response);
        OnResponseBody { replace: step.replace, long_lines: cutter.long_lines - long_before }
    }

    /// The answer ended in trailers: the bytes of an event the upstream
    /// broke off inside (see `lines`), to hand back if the host lets us.
    pub fn on_response_trailers(&mut self) -> Vec<u8> {
        match &mut self.state {
            State::Rewriting(rw) => rw.cutter.take_carry(),
            State::Untouched | State::Counting(_) => Vec::new(),
        }
    }
}
