//! `add_response.wasm`: moves bytes between Envoy and `edge_logic::add`.
//! Every decision is made there; this file only reads and writes headers
//! and bodies, through `edge_host` (host calls that cannot panic).

use std::rc::Rc;

use edge_host as host;
use edge_logic::add::config::AddConfig;
use edge_logic::add::lines::LineCutter;
use edge_logic::add::multipart::{self, Scanner};
use edge_logic::add::query::{self, Target};
use edge_logic::add::reply::Reply;
use edge_logic::add::response::{kubo_headers, AddResponse};
use edge_logic::router::Backend;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

/// Header the route table matches on (shared with the router filter and
/// the manifests).
const BACKEND_HEADER: &str = "x-ipfs-edge-backend";
const ADD_PATH: &str = "/api/v0/add";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: Rc::new(AddConfig::default()) }) });
}}

struct Root {
    config: Rc<AddConfig>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = host::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).unwrap_or_default();
        match AddConfig::parse(&bytes) {
            Ok(c) => {
                self.config = Rc::new(c);
                true
            }
            Err(e) => {
                host::log(LogLevel::Error, &e);
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Add { config: self.config.clone(), state: State::Untouched }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

enum State {
    /// Not an add through the cluster: nothing to do.
    Untouched,
    Rewriting(Box<Rewrite>),
}

struct Rewrite {
    scanner: Option<Scanner>,
    /// Upload bytes seen so far (for `max_upload_bytes`).
    uploaded: u64,
    /// Parts of the upload seen so far.
    parts: u64,
    response: AddResponse,
    cutter: LineCutter,
}

struct Add {
    config: Rc<AddConfig>,
    state: State,
}

impl Context for Add {}

fn reply(r: &Reply, server: &str) -> Action {
    let mut headers: Vec<(&[u8], &[u8])> = r.headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    if r.server && !server.is_empty() {
        headers.push((b"server", server.as_bytes()));
    }
    // Go writes a handler's headers sorted by name.
    headers.sort_by(|a, b| a.0.cmp(b.0));
    if let Err(s) = host::send_response(r.status, &headers, &r.body) {
        host::log(LogLevel::Warn, &format!("add_response: local reply failed: {s:?}"));
    }
    Action::Pause
}

impl HttpContext for Add {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        // One read of the whole map rather than five of single headers:
        // every value the host returns costs a call back into the VM.
        let Some(headers) = host::get_map(MapType::HttpRequestHeaders) else { return Action::Continue };
        let Some(path) = headers.get(":path") else { return Action::Continue };
        let path_only = path.split(|&b| b == b'?').next().unwrap_or_default();
        if path_only != ADD_PATH.as_bytes() {
            return Action::Continue;
        }
        let Ok(path) = std::str::from_utf8(path) else {
            // Not UTF-8: neither Kubo's nor this parser's business to
            // guess; the cluster answers it.
            return Action::Continue;
        };
        match headers.get(":method") {
            Some(b"POST") => {}
            Some(b"OPTIONS") => return reply(&Reply::kubo_options(), ""),
            _ => return reply(&Reply::kubo_method_not_allowed(), ""),
        }
        // Only this filter may send an add to Kubo: any mark but `proxy`
        // goes. `proxy` stays: it is the router filter's decision for an
        // add (the routes follow it), and the cluster proxy is where adds
        // go anyway.
        if headers.get(BACKEND_HEADER) != Some(Backend::Proxy.header_value().as_bytes()) {
            let _ = host::remove_header(MapType::HttpRequestHeaders, BACKEND_HEADER);
        }
        let text = |name: &str| headers.get(name).and_then(|v| std::str::from_utf8(v).ok());
        let limit = self.config.max_upload_bytes;
        let declared = text("content-length").and_then(|v| v.parse::<u64>().ok());
        if limit > 0 && declared.is_some_and(|n| n > limit) {
            return reply(&Reply::upload_too_large(limit), &self.config.server);
        }
        let content_type = text("content-type").unwrap_or_default();
        match query::route(path, content_type, self.config.refuse_unsupported_options) {
            Target::Reply(r) => reply(&r, &self.config.server),
            Target::Kubo => {
                if self.config.only_hash_backend.is_empty() {
                    return reply(&Reply::kubo_error("only-hash is not supported when adding to cluster"), &self.config.server);
                }
                let routed = host::set_header(MapType::HttpRequestHeaders, BACKEND_HEADER, self.config.only_hash_backend.as_bytes())
                    .and_then(|_| host::clear_route_cache());
                if let Err(s) = routed {
                    host::log(LogLevel::Error, &format!("add_response: cannot route only-hash to Kubo: {s:?}"));
                    return reply(&Reply::kubo_error("only-hash is not supported when adding to cluster"), &self.config.server);
                }
                Action::Continue
            }
            Target::Cluster { path: new_path, request } => {
                if new_path != path {
                    if let Err(s) = host::set_header(MapType::HttpRequestHeaders, ":path", new_path.as_bytes()) {
                        host::log(LogLevel::Warn, &format!("add_response: cannot rewrite the query: {s:?}"));
                    }
                }
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
                    cutter: LineCutter::new(self.config.max_line_bytes),
                }));
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        let State::Rewriting(rw) = &mut self.state else { return Action::Continue };
        rw.uploaded += size as u64;
        let limit = self.config.max_upload_bytes;
        if limit > 0 && rw.uploaded > limit {
            // A chunked upload without Content-Length: cut where it passes
            // the limit (Envoy resets the request to the cluster, which then
            // adds nothing and pins nothing).
            return reply(&Reply::upload_too_large(limit), &self.config.server);
        }
        let Some(scanner) = rw.scanner.as_mut() else { return Action::Continue };
        // Read-only: the upload passes byte for byte, chunk by chunk.
        let chunk = if size == 0 { Vec::new() } else { host::get_buffer(BufferType::HttpRequestBody, 0, size).unwrap_or_default() };
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
            return reply(&Reply::kubo_error(&message), &self.config.server);
        }
        if eos && *parts == 0 && !scanner.lost() {
            // Kubo: "expected a file argument"; the cluster v1.1.6 panics
            // and drops the connection.
            return reply(&Reply::kubo_error("expected a file argument"), &self.config.server);
        }
        if scanner.lost() {
            host::log(LogLevel::Info, "add_response: upload structure not followed; progress names left as the cluster wrote them");
            response.names_lost();
            rw.scanner = None;
        } else if *parts > 0 && !response.needs_upload_structure() {
            // The first part is checked; nothing later changes the answer.
            rw.scanner = None;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let State::Rewriting(_) = &self.state else { return Action::Continue };
        let Some(headers) = host::get_map(MapType::HttpResponseHeaders) else { return Action::Continue };
        let text: Vec<(String, String)> = headers
            .pairs()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let get = |name: &str| text.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let streaming = get(":status") == Some("200") && get("x-chunked-output").is_some();
        if !streaming {
            // An answer the cluster gave before streaming (its own error
            // reply): passed as it is.
            self.state = State::Untouched;
            return Action::Continue;
        }
        let new = kubo_headers(&text, &self.config.server);
        let pairs: Vec<(&[u8], &[u8])> = new.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        if let Err(s) = host::set_map(MapType::HttpResponseHeaders, &pairs) {
            host::log(LogLevel::Warn, &format!("add_response: cannot set response headers: {s:?}"));
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        let State::Rewriting(rw) = &mut self.state else { return Action::Continue };
        let buf = if size == 0 { Vec::new() } else { host::get_buffer(BufferType::HttpResponseBody, 0, size).unwrap_or_default() };
        let Rewrite { response, cutter, .. } = &mut **rw;
        let max_line = self.config.max_line_bytes;
        let long_before = cutter.long_lines;
        let step = cutter.step(&buf, eos, response);
        if cutter.long_lines != long_before {
            host::log(LogLevel::Warn, &format!("add_response: a response line over {max_line} bytes passed unchanged"));
        }
        if let Some(new) = &step.replace {
            if let Err(s) = host::set_buffer(BufferType::HttpResponseBody, 0, size, new) {
                host::log(LogLevel::Error, &format!("add_response: cannot replace body chunk: {s:?}"));
            }
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _n: usize) -> Action {
        let State::Rewriting(rw) = &mut self.state else { return Action::Continue };
        let carried = rw.cutter.take_carry();
        if !carried.is_empty() {
            // The upstream broke off inside an event (see
            // edge_logic::add::lines): hand the bytes back if Envoy lets us,
            // else say what was lost.
            if let Err(s) = host::set_buffer(BufferType::HttpResponseBody, 0, 0, &carried) {
                host::log(
                    LogLevel::Error,
                    &format!("add_response: upstream ended inside an event; {} bytes of it could not be passed on ({s:?})", carried.len()),
                );
            }
        }
        Action::Continue
    }
}
