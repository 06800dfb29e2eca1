//! Proxy-Wasm wrapper of the router: see `edge_logic::router` for the logic.
//!
//! Per request: read the headers once, drop any client-sent
//! `x-ipfs-edge-backend`, classify, then either set that header (Envoy
//! recomputes the route when a filter changes a request header) or answer
//! with Kubo's error JSON. Bodies are never touched. Every host call goes through `edge_host`,
//! which returns errors instead of panicking; on any host failure the
//! request fails closed (no backend header: Envoy's default route refuses).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::rc::Rc;

use edge_host::metrics::Metrics;
use edge_host::{self as host, HostError};
use edge_logic::backend::BACKEND_HEADER;
use edge_logic::metrics;
use edge_logic::router::{self, Decision, Policy, Request};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

const REQUEST: MapType = MapType::HttpRequestHeaders;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(RouterRoot { policy: Rc::new(Policy::default()), metrics: None })
    });
}}

struct RouterRoot {
    policy: Rc<Policy>,
    /// Defined on the first configuration (the series never change).
    metrics: Option<Rc<Metrics>>,
}

impl Context for RouterRoot {}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = host::configuration() else {
            return false;
        };
        if self.metrics.is_none() {
            let names = metrics::fixed_stat_names(metrics::router::FAMILIES);
            let m = Metrics::define(names.iter().map(|n| (n.as_str(), false)));
            self.metrics = Some(Rc::new(m));
        }
        match Policy::from_json(&bytes) {
            Ok(p) => {
                if p.credentials.is_empty() {
                    host::log(LogLevel::Info, "no credentials configured, commands marked `credential` are refused");
                }
                for key in p.credentials.plain_text() {
                    // The key only, never the secret.
                    host::log(LogLevel::Warn, &router::plain_text_warning(key));
                }
                self.policy = Rc::new(p);
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
        Some(Box::new(RouterHttp { policy: Rc::clone(&self.policy), metrics }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct RouterHttp {
    policy: Rc<Policy>,
    metrics: Rc<Metrics>,
}

impl Context for RouterHttp {}

impl RouterHttp {
    fn refuse(&self, r: &router::Refusal) -> Action {
        let (headers, body) = router::refusal_response(&self.policy, r);
        let h: Vec<(&[u8], &[u8])> = headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        match host::send_response(u32::from(r.status), &h, &body) {
            Ok(()) => Action::Pause,
            Err(e) => {
                host::log(LogLevel::Error, &format!("local response failed: host status {e}"));
                // Without a backend header the request lands on Envoy's
                // default (refusing) route; if even the removal fails, stall
                // the request rather than let it through.
                match host::remove_header(REQUEST, BACKEND_HEADER) {
                    Ok(()) => Action::Continue,
                    Err(_) => Action::Pause,
                }
            }
        }
    }

    fn fail_closed(&self, what: &str, e: Option<HostError>) -> Action {
        match e {
            Some(e) => host::log(LogLevel::Error, &format!("{what}: host status {e}")),
            None => host::log(LogLevel::Error, what),
        }
        // In addition to the decision already counted, if there was one.
        self.metrics.count(metrics::router::reason(500));
        self.refuse(&router::Refusal {
            status: 500,
            message: "500 - edge router failure".into(),
            allow: None,
            challenge: false,
            credential: None,
        })
    }
}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(map) = host::get_map(REQUEST) else {
            return self.fail_closed("cannot read request headers", None);
        };
        // Header names are tokens: a non-UTF-8 one cannot match anything the
        // router reads, so it is read as a name nothing matches; values stay
        // bytes.
        let headers: Vec<(&str, &[u8])> = map.pairs().map(|(k, v)| (std::str::from_utf8(k).unwrap_or("\u{fffd}"), v)).collect();
        let mut method = "";
        let mut path: &[u8] = b"";
        let mut client_marked = false;
        let mut has_authorization = false;
        for (k, v) in &headers {
            match *k {
                ":method" => method = std::str::from_utf8(v).unwrap_or(""),
                ":path" => path = v,
                BACKEND_HEADER => client_marked = true,
                "authorization" => has_authorization = true,
                _ => {}
            }
        }
        // A client must never choose its backend.
        if client_marked {
            if let Err(e) = host::remove_header(REQUEST, BACKEND_HEADER) {
                return self.fail_closed("cannot remove client backend header", Some(e));
            }
        }
        let decision = router::classify(&self.policy, &Request { method, path, headers: &headers });
        for i in metrics::router::counted(&decision).into_iter().flatten() {
            self.metrics.count(i);
        }
        match decision {
            Decision::Refuse(r) => self.refuse(&r),
            Decision::Platform => {
                // Unmarked: the platform's own route, or the route table's
                // refusal. A removed client mark must not leave its route.
                if client_marked {
                    if let Err(e) = host::clear_route_cache() {
                        return self.fail_closed("clear_route_cache failed", Some(e));
                    }
                }
                Action::Continue
            }
            Decision::Route { backend, strip_authorization, .. } => {
                if strip_authorization && has_authorization {
                    if let Err(e) = host::remove_header(REQUEST, "authorization") {
                        return self.fail_closed("cannot remove authorization", Some(e));
                    }
                }
                if let Err(e) = host::set_header(REQUEST, BACKEND_HEADER, backend.header_value().as_bytes()) {
                    return self.fail_closed("cannot set backend header", Some(e));
                }
                // Envoy recomputes the route when a filter changes a request
                // header (Context::onHeadersModified; the router tests fail
                // if it stops), so the header write above is enough: an
                // explicit clear_route_cache costs some 6 us per request
                // (bench_edge). It is still called when the client sent a
                // mark, so that an Envoy that no longer recomputes could at
                // worst refuse requests (the route cached for unmarked ones
                // is the refusing one), never keep a client's choice.
                if client_marked {
                    if let Err(e) = host::clear_route_cache() {
                        return self.fail_closed("clear_route_cache failed", Some(e));
                    }
                }
                Action::Continue
            }
        }
    }
}
