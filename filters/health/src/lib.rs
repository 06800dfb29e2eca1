//! Proxy-Wasm wrapper of the health filter: see `edge_logic::health`.
//!
//! The root context owns the state: in active mode it checks each backend
//! on its own timer with `dispatch_http_call` and records the outcomes; HTTP
//! contexts only read that state, so a probe never waits on a backend.
//! Envoy runs one VM per worker thread, so each worker checks on its own
//! (W workers send W checks per interval) and answers from its own view.

#[path = "../../router/src/abi.rs"]
mod abi;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use edge_logic::health::{ok_answer, HealthConfig, Tracker};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(HealthRoot {
            config: Rc::new(HealthConfig::default()),
            tracker: None,
            in_flight: HashMap::new(),
            first_tick: true,
        })
    });
}}

/// The first round of checks runs this soon after configuration, instead of
/// a whole interval later.
const FIRST_TICK_MS: u32 = 200;

struct HealthRoot {
    config: Rc<HealthConfig>,
    tracker: Option<Rc<RefCell<Tracker>>>,
    /// Call token -> index of the check, for the checks in flight.
    in_flight: HashMap<u32, usize>,
    first_tick: bool,
}

impl HealthRoot {
    fn record(&self, i: usize, outcome: Result<(), String>) {
        if let Some(t) = &self.tracker {
            if let Ok(mut t) = t.try_borrow_mut() {
                let before = t.healthy();
                t.record(i, outcome);
                let after = t.healthy();
                if before != after {
                    let (status, body) = t.answer();
                    abi::log(abi::LOG_WARN, &format!("now {status}: {}", body.trim_end()));
                }
            }
        }
    }
}

impl Context for HealthRoot {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, _body_size: usize, _num_trailers: usize) {
        let Some(i) = self.in_flight.remove(&token_id) else {
            return;
        };
        // No :status means the host gave up: timeout, refused, reset.
        let status = abi::header(abi::MAP_HTTP_CALL_RESPONSE_HEADERS, ":status")
            .ok()
            .flatten()
            .and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u16>().ok()));
        let outcome = match self.config.active.as_ref().and_then(|a| a.checks.get(i)) {
            Some(check) => check.evaluate(status),
            None => return,
        };
        self.record(i, outcome);
    }
}

impl RootContext for HealthRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match abi::plugin_configuration(size) {
            Ok(b) => b,
            Err(e) => {
                abi::log(abi::LOG_ERROR, &format!("cannot read plugin configuration: host status {}", e.0));
                return false;
            }
        };
        let config = match HealthConfig::from_json(&bytes) {
            Ok(c) => c,
            Err(msg) => {
                abi::log(abi::LOG_ERROR, &msg);
                return false;
            }
        };
        self.tracker = config.active.as_ref().map(|a| Rc::new(RefCell::new(Tracker::new(a))));
        self.in_flight.clear();
        self.first_tick = true;
        let active = config.active.is_some();
        self.config = Rc::new(config);
        if active {
            if let Err(e) = abi::set_tick_period_ms(FIRST_TICK_MS) {
                abi::log(abi::LOG_ERROR, &format!("cannot start the check timer: host status {}", e.0));
                return false;
            }
        }
        true
    }

    fn on_tick(&mut self) {
        let Some(active) = self.config.active.clone() else {
            return;
        };
        if self.first_tick {
            self.first_tick = false;
            let ms = u32::try_from(active.interval.as_millis()).unwrap_or(u32::MAX);
            if let Err(e) = abi::set_tick_period_ms(ms) {
                abi::log(abi::LOG_ERROR, &format!("cannot set the check interval: host status {}", e.0));
            }
        }
        for (i, check) in active.checks.iter().enumerate() {
            // A check still in flight is not doubled; its timeout (shorter
            // than the interval) settles it.
            if self.in_flight.values().any(|&j| j == i) {
                continue;
            }
            let body: Option<&[u8]> = if check.method == "POST" { Some(b"") } else { None };
            // The SDK's dispatch must be used (it registers the token for the
            // callback); it only panics on statuses Envoy's http_call does
            // not return (it returns Ok, BadArgument or InternalFailure).
            match proxy_wasm::hostcalls::dispatch_http_call(
                &check.cluster,
                check.headers(),
                body,
                vec![],
                clamp(active.timeout),
            ) {
                Ok(token) => {
                    self.in_flight.insert(token, i);
                }
                Err(status) => {
                    // BadArgument is what an unknown cluster gives.
                    self.record(i, Err(format!("cannot call cluster {:?}: {:?}", check.cluster, status)));
                }
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HealthHttp {
            config: Rc::clone(&self.config),
            tracker: self.tracker.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn clamp(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

struct HealthHttp {
    config: Rc<HealthConfig>,
    tracker: Option<Rc<RefCell<Tracker>>>,
}

impl Context for HealthHttp {}

impl HttpContext for HealthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let get = |name: &str| abi::header(abi::MAP_REQUEST_HEADERS, name).ok().flatten();
        let (Some(method), Some(path)) = (get(":method"), get(":path")) else {
            return Action::Continue;
        };
        let method = std::str::from_utf8(&method).unwrap_or("");
        // Only read the user agent when it matters.
        let ua = match self.config.answer {
            edge_logic::health::Answer::All => None,
            edge_logic::health::Answer::Agents => get("user-agent"),
        };
        if !self.config.takes(method, &path, ua.as_deref()) {
            return Action::Continue;
        }
        let (status, body) = match &self.tracker {
            Some(t) => match t.try_borrow() {
                Ok(t) => t.answer(),
                Err(_) => (503, "{\"status\":\"unhealthy\",\"reason\":\"state busy\"}\n".to_string()),
            },
            None => ok_answer(),
        };
        let headers: [(&str, &[u8]); 2] = [("content-type", b"application/json"), ("cache-control", b"no-store")];
        let body = if method == "HEAD" { None } else { Some(body.as_bytes()) };
        match abi::send_local_response(status, &headers, body) {
            Ok(()) => Action::Pause,
            Err(e) => {
                abi::log(abi::LOG_ERROR, &format!("local response failed: host status {}", e.0));
                Action::Continue
            }
        }
    }
}
