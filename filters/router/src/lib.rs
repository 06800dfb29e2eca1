//! Proxy-Wasm wrapper of the router: see `edge_logic::router` for the logic.
//!
//! Per request: read the headers once, drop any client-sent
//! `x-ipfs-edge-backend`, classify, then either set that header and ask
//! Envoy to recompute the route (`clear_route_cache`), or answer with Kubo's
//! error JSON. Bodies are never touched. Every host call goes through `abi`,
//! which returns errors instead of panicking; on any host failure the
//! request fails closed (no backend header: Envoy's default route refuses).

mod abi;

use std::rc::Rc;

use edge_logic::router::{self, Decision, Policy, Request, BACKEND_HEADER};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(RouterRoot { policy: Rc::new(Policy::default()) })
    });
}}

struct RouterRoot {
    policy: Rc<Policy>,
}

impl Context for RouterRoot {}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match abi::plugin_configuration(size) {
            Ok(b) => b,
            Err(e) => {
                abi::log(abi::LOG_ERROR, &format!("cannot read plugin configuration: host status {}", e.0));
                return false;
            }
        };
        match Policy::from_json(&bytes) {
            Ok(p) => {
                if p.credentials.is_empty() {
                    abi::log(abi::LOG_INFO, "no credentials configured, commands marked `credential` are refused");
                }
                self.policy = Rc::new(p);
                true
            }
            Err(msg) => {
                abi::log(abi::LOG_ERROR, &msg);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RouterHttp { policy: Rc::clone(&self.policy) }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct RouterHttp {
    policy: Rc<Policy>,
}

impl Context for RouterHttp {}

impl RouterHttp {
    fn refuse(&self, r: &router::Refusal) -> Action {
        let body = router::kubo_error_body(r.status, &r.message);
        let headers = router::refusal_headers(&self.policy, r);
        let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        match abi::send_local_response(r.status, &h, Some(body.as_bytes())) {
            Ok(()) => Action::Pause,
            Err(e) => {
                abi::log(abi::LOG_ERROR, &format!("local response failed: host status {}", e.0));
                // Without a backend header the request lands on Envoy's
                // default (refusing) route; if even the removal fails, stall
                // the request rather than let it through.
                match abi::remove_header(abi::MAP_REQUEST_HEADERS, BACKEND_HEADER) {
                    Ok(()) => Action::Continue,
                    Err(_) => Action::Pause,
                }
            }
        }
    }

    fn fail_closed(&self, what: &str, e: abi::HostError) -> Action {
        abi::log(abi::LOG_ERROR, &format!("{what}: host status {}", e.0));
        self.refuse(&router::Refusal {
            status: 500,
            message: "500 - edge router failure".into(),
            allow: None,
            challenge: false,
        })
    }
}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let pairs = match abi::header_pairs(abi::MAP_REQUEST_HEADERS) {
            Ok(p) => p,
            Err(e) => return self.fail_closed("cannot read request headers", e),
        };
        let mut method = "";
        let mut path: &[u8] = b"";
        let mut client_marked = false;
        let mut has_authorization = false;
        for (k, v) in &pairs {
            match k.as_str() {
                ":method" => method = std::str::from_utf8(v).unwrap_or(""),
                ":path" => path = v,
                BACKEND_HEADER => client_marked = true,
                "authorization" => has_authorization = true,
                _ => {}
            }
        }
        // A client must never choose its backend.
        if client_marked {
            if let Err(e) = abi::remove_header(abi::MAP_REQUEST_HEADERS, BACKEND_HEADER) {
                return self.fail_closed("cannot remove client backend header", e);
            }
        }
        let headers: Vec<(&str, &[u8])> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let decision = router::classify(&self.policy, &Request { method, path, headers: &headers });
        match decision {
            Decision::Refuse(r) => self.refuse(&r),
            Decision::Route { backend, strip_authorization } => {
                if strip_authorization && has_authorization {
                    if let Err(e) = abi::remove_header(abi::MAP_REQUEST_HEADERS, "authorization") {
                        return self.fail_closed("cannot remove authorization", e);
                    }
                }
                if let Err(e) = abi::replace_header(abi::MAP_REQUEST_HEADERS, BACKEND_HEADER, backend.header_value()) {
                    return self.fail_closed("cannot set backend header", e);
                }
                // Without this, a route chosen before this filter ran (by an
                // earlier filter asking for it) would stay in force.
                if let Err(e) = abi::call_foreign_function("clear_route_cache", &[]) {
                    return self.fail_closed("clear_route_cache failed", e);
                }
                Action::Continue
            }
        }
    }
}
