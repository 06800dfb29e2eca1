//! Proxy-Wasm wrapper of add_response: see `edge_logic::add` for the logic.
//!
//! Every decision is made by `edge_logic::add::flow::AddFlow`; this file
//! reads what a step asks for, hands it over, and carries out the answer
//! (header edits, a local reply, a replaced body chunk). Every host call
//! goes through `edge_host`, which returns errors instead of panicking.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::rc::Rc;

use edge_host::metrics::Metrics;
use edge_host::{self as host, HostError};
use edge_logic::add::config::AddConfig;
use edge_logic::add::flow::{AddFlow, OnRequestBody, OnRequestHeaders, RequestHeaders};
use edge_logic::add::reply::Reply;
use edge_logic::backend::BACKEND_HEADER;
use edge_logic::metrics::{self, add as counted};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

const REQUEST: MapType = MapType::HttpRequestHeaders;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(AddRoot { config: Rc::new(AddConfig::default()), metrics: None })
    });
}}

struct AddRoot {
    config: Rc<AddConfig>,
    /// Defined on the first configuration (the series never change).
    metrics: Option<Rc<Metrics>>,
}

impl Context for AddRoot {}

impl RootContext for AddRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = host::configuration() else {
            return false;
        };
        if self.metrics.is_none() {
            let names = metrics::fixed_stat_names(counted::FAMILIES);
            let m = Metrics::define(names.iter().map(|n| (n.as_str(), false)));
            self.metrics = Some(Rc::new(m));
        }
        match AddConfig::from_json(&bytes) {
            Ok(c) => {
                self.config = Rc::new(c);
                true
            }
            Err(msg) => {
                host::log(LogLevel::Error, &msg);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let metrics = self.metrics.clone().unwrap_or_default();
        Some(Box::new(AddHttp { config: Rc::clone(&self.config), flow: AddFlow::new(), metrics }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AddHttp {
    config: Rc<AddConfig>,
    flow: AddFlow,
    metrics: Rc<Metrics>,
}

impl Context for AddHttp {}

impl AddHttp {
    fn reply(&self, r: &Reply) -> Action {
        self.metrics.count(counted::reply(r));
        let headers: Vec<(&[u8], &[u8])> =
            r.headers_as_sent(&self.config.server).into_iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        if let Err(e) = host::send_response(r.status, &headers, &r.body) {
            host::log(LogLevel::Warn, &format!("add_response: local reply failed: host status {e}"));
        }
        Action::Pause
    }

    /// Marks the request for `backend` and has Envoy route it again.
    fn mark(backend: &str) -> Result<(), HostError> {
        host::set_header(REQUEST, BACKEND_HEADER, backend.as_bytes())?;
        host::clear_route_cache()
    }
}

impl HttpContext for AddHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // One read of the whole map rather than five of single headers:
        // every value the host returns costs a call back into the VM.
        let Some(headers) = host::get_map(REQUEST) else { return Action::Continue };
        let request = RequestHeaders {
            method: headers.get(":method"),
            path: headers.get(":path"),
            content_type: headers.get("content-type"),
            content_length: headers.get("content-length"),
            mark: headers.get(BACKEND_HEADER),
        };
        let forward = match self.flow.on_request_headers(&self.config, &request) {
            OnRequestHeaders::Pass => return Action::Continue,
            OnRequestHeaders::Reply(r) => return self.reply(&r),
            OnRequestHeaders::Forward(f) => f,
        };
        if forward.drop_mark {
            // Failing that, the route table still only takes marks it knows.
            let _ = host::remove_header(REQUEST, BACKEND_HEADER);
        }
        if let Some(backend) = &forward.mark {
            if let Err(e) = Self::mark(backend) {
                host::log(LogLevel::Error, &format!("add_response: cannot route only-hash to Kubo: host status {e}"));
                return self.reply(&Reply::only_hash_refused());
            }
            self.metrics.count(counted::ONLY_HASH);
        }
        if let Some(path) = &forward.path {
            if let Err(e) = host::set_header(REQUEST, ":path", path.as_bytes()) {
                host::log(LogLevel::Warn, &format!("add_response: cannot rewrite the query: host status {e}"));
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Read-only: the upload passes byte for byte, chunk by chunk.
        let read = || host::get_buffer(BufferType::HttpRequestBody, 0, body_size).unwrap_or_default();
        match self.flow.on_request_body(&self.config, body_size, end_of_stream, read) {
            OnRequestBody::Continue => Action::Continue,
            OnRequestBody::StructureLost => {
                host::log(LogLevel::Info, "add_response: upload structure not followed; progress names left as the cluster wrote them");
                Action::Continue
            }
            OnRequestBody::Reply(r) => self.reply(&r),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let read = || {
            let map = host::get_map(MapType::HttpResponseHeaders)?;
            Some(map.pairs().map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned())).collect())
        };
        let was_rewriting = self.flow.rewriting();
        let new = self.flow.on_response_headers(&self.config, read);
        if let Some(i) = counted::answer(was_rewriting, new.is_some(), self.flow.rewriting()) {
            self.metrics.count(i);
        }
        if let Some(new) = new {
            let pairs: Vec<(&[u8], &[u8])> = new.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
            if let Err(e) = host::set_map(MapType::HttpResponseHeaders, &pairs) {
                host::log(LogLevel::Warn, &format!("add_response: cannot set response headers: host status {e}"));
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let read = || host::get_buffer(BufferType::HttpResponseBody, 0, body_size).unwrap_or_default();
        let step = self.flow.on_response_body(body_size, end_of_stream, read);
        if step.long_lines > 0 {
            self.metrics.add(counted::LONG_LINES, step.long_lines);
            let max_line = self.config.max_line_bytes;
            host::log(LogLevel::Warn, &format!("add_response: a response line over {max_line} bytes passed unchanged"));
        }
        if let Some(new) = &step.replace {
            if let Err(e) = host::set_buffer(BufferType::HttpResponseBody, 0, body_size, new) {
                host::log(LogLevel::Error, &format!("add_response: cannot replace body chunk: host status {e}"));
            }
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        let carried = self.flow.on_response_trailers();
        if !carried.is_empty() {
            // The upstream broke off inside an event (see
            // edge_logic::add::lines): hand the bytes back if Envoy lets us,
            // else say what was lost.
            if let Err(e) = host::set_buffer(BufferType::HttpResponseBody, 0, 0, &carried) {
                host::log(
                    LogLevel::Error,
                    &format!("add_response: upstream ended inside an event; {} bytes of it could not be passed on (host status {e})", carried.len()),
                );
            }
        }
        Action::Continue
    }
}
