//! Proxy-Wasm wrapper of the health filter: see `edge_logic::health`.
//!
//! The root context owns the state: in active mode it checks each backend
//! on its own timer with `dispatch_http_call` and records the outcomes; HTTP
//! contexts only read that state, so a probe never waits on a backend.
//! Envoy runs one VM per worker thread, so each worker checks on its own
//! (W workers send W checks per interval) and answers from its own view.
//! Every host call goes through `edge_host`, which cannot panic.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use edge_host as host;
use edge_host::metrics::Metrics;
use edge_logic::health::{ok_answer, HealthConfig, Tracker};
use edge_logic::metrics::health as counted;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(HealthRoot {
            config: Rc::new(HealthConfig::default()),
            tracker: None,
            in_flight: HashMap::new(),
            first_tick: true,
            metrics: Rc::default(),
        })
    });
}}

/// The first round of checks runs this soon after configuration, instead of
/// a whole interval later.
const FIRST_TICK: Duration = Duration::from_millis(200);

struct HealthRoot {
    config: Rc<HealthConfig>,
    tracker: Option<Rc<RefCell<Tracker>>>,
    /// Call token -> index of the check, for the checks in flight.
    in_flight: HashMap<u32, usize>,
    first_tick: bool,
    /// Defined on each configuration: the per-check series are named by it.
    metrics: Rc<Metrics>,
}

impl HealthRoot {
    fn record(&self, i: usize, outcome: Result<(), String>) {
        if let Some(t) = &self.tracker {
            if let Ok(mut t) = t.try_borrow_mut() {
                let before = t.healthy();
                if outcome.is_err() {
                    self.metrics.count(counted::check_failures(i));
                }
                t.record(i, outcome);
                let after = t.healthy();
                if let Some(b) = t.backends.get(i) {
                    self.metrics.set(counted::check_healthy(i), counted::gauge(b.state));
                }
                self.metrics.set(counted::HEALTHY, u64::from(after));
                if before != after {
                    let (status, body) = t.answer();
                    host::log(LogLevel::Warn, &format!("now {status}: {}", body.trim_end()));
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
        let status = host::get_header(MapType::HttpCallResponseHeaders, ":status")
            .and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u16>().ok()));
        let outcome = match self.config.active.as_ref().and_then(|a| a.checks.get(i)) {
            Some(check) => check.evaluate(status),
            None => return,
        };
        self.record(i, outcome);
    }
}

impl RootContext for HealthRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = host::configuration() else {
            return false;
        };
        let config = match HealthConfig::from_json(&bytes) {
            Ok(c) => c,
            Err(msg) => {
                host::log(LogLevel::Error, &msg);
                return false;
            }
        };
        let names = counted::stat_names(config.active.as_ref());
        let gauges = counted::gauges(config.active.as_ref());
        let m = Metrics::define(names.iter().zip(&gauges).map(|(n, g)| (n.as_str(), *g)));
        // Not checked yet: unhealthy, as the answer says.
        for (i, g) in gauges.iter().enumerate() {
            if *g {
                m.set(i, 0);
            }
        }
        self.metrics = Rc::new(m);
        self.tracker = config.active.as_ref().map(|a| Rc::new(RefCell::new(Tracker::new(a))));
        self.in_flight.clear();
        self.first_tick = true;
        let active = config.active.is_some();
        self.config = Rc::new(config);
        if active {
            if let Err(e) = host::set_tick_period(FIRST_TICK) {
                host::log(LogLevel::Error, &format!("cannot start the check timer: host status {e}"));
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
            if let Err(e) = host::set_tick_period(active.interval) {
                host::log(LogLevel::Error, &format!("cannot set the check interval: host status {e}"));
            }
        }
        for (i, check) in active.checks.iter().enumerate() {
            // A check still in flight is not doubled; its timeout (shorter
            // than the interval) settles it.
            if self.in_flight.values().any(|&j| j == i) {
                continue;
            }
            let body: Option<&[u8]> = if check.method == "POST" { Some(b"") } else { None };
            match host::dispatch_http_call(&check.cluster, &check.headers(), body, active.timeout) {
                Ok(token) => {
                    self.in_flight.insert(token, i);
                }
                Err(status) => {
                    // BadArgument is what an unknown cluster gives.
                    self.record(i, Err(format!("cannot call cluster {:?}: {status}", check.cluster)));
                }
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HealthHttp {
            config: Rc::clone(&self.config),
            tracker: self.tracker.clone(),
            metrics: Rc::clone(&self.metrics),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct HealthHttp {
    config: Rc<HealthConfig>,
    tracker: Option<Rc<RefCell<Tracker>>>,
    metrics: Rc<Metrics>,
}

impl Context for HealthHttp {}

impl HttpContext for HealthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // One read of the whole map: each value the host hands over costs a
        // call back into the VM (to allocate it), which costs more here than
        // copying a few extra headers.
        let Some(headers) = host::get_map(MapType::HttpRequestHeaders) else {
            return Action::Continue;
        };
        let (Some(method), Some(path)) = (headers.get(":method"), headers.get(":path")) else {
            return Action::Continue;
        };
        let method = std::str::from_utf8(method).unwrap_or("");
        if !self.config.takes(method, path, headers.get("user-agent")) {
            return Action::Continue;
        }
        let (status, body) = match &self.tracker {
            Some(t) => match t.try_borrow() {
                Ok(t) => t.answer(),
                Err(_) => (503, "{\"status\":\"unhealthy\",\"reason\":\"state busy\"}\n".to_string()),
            },
            None => ok_answer(),
        };
        self.metrics.count(counted::probe(status));
        let headers: [(&[u8], &[u8]); 2] = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")];
        let body: &[u8] = if method == "HEAD" { b"" } else { body.as_bytes() };
        match host::send_response(u32::from(status), &headers, body) {
            Ok(()) => Action::Pause,
            Err(e) => {
                host::log(LogLevel::Error, &format!("local response failed: host status {e}"));
                Action::Continue
            }
        }
    }
}
