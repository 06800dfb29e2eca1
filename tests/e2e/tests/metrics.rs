//! The filters' metrics as an operator scrapes them: a known sequence of
//! requests through the whole edge (manifests/envoy/envoy.yaml, its tag
//! rules included) in front of the real daemons of a local cluster peer,
//! then Envoy's admin `/stats/prometheus`, every series of the filters
//! compared with the count the sequence must leave.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::edge::{EdgeStack, Req};
use e2e::envoy::Patch;
use e2e::upload::{body, content_type, Entry};
use edge_logic::metrics::{self, Family};

const TOKEN: &str = "metrics-token-0123456789";
const CID: &str = "bafkqaaa";

/// Envoy's Prometheus output: series (name and labels as printed) -> value,
/// the filters' only.
fn scrape(stack: &EdgeStack) -> BTreeMap<String, f64> {
    let r = e2e::http::get(stack.envoy.admin, "/stats/prometheus").expect("admin answers");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("text");
    text.lines()
        .filter(|l| l.starts_with(metrics::PREFIX))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            (series.to_string(), value.parse().unwrap_or_else(|_| panic!("{l:?}")))
        })
        .collect()
}

/// A series as Envoy prints it: `name{label="value"}`, `name{}` unlabelled.
fn series(f: &Family, value: Option<&str>) -> String {
    match (f.label, value) {
        (Some((label, _)), Some(v)) => format!("{}{{{label}=\"{v}\"}}", f.name),
        _ => format!("{}{{}}", f.name),
    }
}

/// Every fixed series of these families at 0, the way a fresh Envoy shows
/// them (defined when the filter is configured, before any request).
fn zeros(families: &[Family]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for f in families {
        match f.label {
            Some((_, values)) => {
                for v in values.iter() {
                    out.insert(series(f, Some(v)), 0.0);
                }
            }
            None => {
                out.insert(series(f, None), 0.0);
            }
        }
    }
    out
}

fn family(families: &'static [Family], name: &str) -> &'static Family {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no metric {name}"))
}

/// A raw HTTP/1.1 request with a body and these extra headers.
fn raw(method: &str, target: &str, headers: &[(&str, &str)], ct: Option<&str>, body: &[u8]) -> Vec<u8> {
    let r = e2e::http::request(method, target, ct, body);
    let at = r.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut out = r[..at].to_vec();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(&r[at..]);
    out
}

/// Sends a request head alone and reads the complete answer.
fn answer_to_head(port: u16, head: &[u8]) -> e2e::http::Response {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(r) = e2e::http::parse(&seen) {
            return r;
        }
        let n = s.read(&mut buf).unwrap_or_else(|e| panic!("{e} after {:?}", String::from_utf8_lossy(&seen)));
        assert!(n > 0, "closed before a complete answer: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn every_decision_is_counted_once_in_envoys_prometheus_output() {
    let router = format!(r#"{{"preset": "read-only", "credentials": {{"bearer_tokens": ["{TOKEN}"]}}}}"#);
    let add = r#"{"max_line_bytes": 256, "max_upload_bytes": 100000}"#;
    let stack = EdgeStack::start_patched(&router, "{}", vec![Patch::FilterConfig("add_response", add.into())]);

    // Before any request: every series defined, all at 0 (dashboards see
    // zeros, not gaps). The health filter, passive, has only its probes.
    let mut want = zeros(metrics::router::FAMILIES);
    want.extend(zeros(metrics::add::FAMILIES));
    let probes = family(metrics::health::FAMILIES, "ipfs_edge_health_probes_total");
    want.insert(series(probes, Some("healthy")), 0.0);
    want.insert(series(probes, Some("unhealthy")), 0.0);
    assert_eq!(scrape(&stack), want, "a fresh Envoy");

    let bump = |want: &mut BTreeMap<String, f64>, key: String| {
        *want.get_mut(&key).unwrap_or_else(|| panic!("{key} is not among the defined series")) += 1.0;
    };
    let (r, a) = (metrics::router::FAMILIES, metrics::add::FAMILIES);
    let routed = |b: &str| series(family(r, "ipfs_edge_router_routed_total"), Some(b));
    let refused = |why: &str| series(family(r, "ipfs_edge_router_refused_total"), Some(why));
    let credential = |what: &str| series(family(r, "ipfs_edge_router_credentials_total"), Some(what));
    let replies = |why: &str| series(family(a, "ipfs_edge_add_replies_total"), Some(why));
    let answers = |what: &str| series(family(a, "ipfs_edge_add_answers_total"), Some(what));

    // Requests without a body, their status, and what they count.
    let simple: Vec<(Req, u16, Vec<String>)> = vec![
        // Clean gateway reads take Envoy's native route: no filter runs, nothing is counted
        // here (Envoy's own statistics of the gateway cluster count them). With an escape (the
        // same CID, its `b` written %62) a read is the router's.
        (Req::new("GET", &format!("/ipfs/{CID}")), 200, vec![]),
        (Req::new("HEAD", &format!("/ipfs/{CID}")), 200, vec![]),
        (Req::new("GET", &format!("/ipfs/%62{}", &CID[1..])), 200, vec![routed("gateway")]),
        (Req::new("HEAD", &format!("/ipfs/%62{}", &CID[1..])), 200, vec![routed("gateway")]),
        (Req::new("POST", "/api/v0/version"), 200, vec![routed("kubo")]),
        (Req::new("GET", "/id"), 200, vec![routed("rest")]),
        (Req::new("GET", "/"), 200, vec![series(probes, Some("healthy"))]),
        (Req::new("POST", "/api/v0/add"), 401, vec![refused("unauthorized"), credential("missing")]),
        (
            Req::new("POST", "/api/v0/add").header("Authorization", "Bearer wrong-token-wrong-token"),
            401,
            vec![refused("unauthorized"), credential("invalid")],
        ),
        (Req::new("POST", "/api/v0/shutdown"), 403, vec![refused("forbidden")]),
        (Req::new("GET", "/nope"), 404, vec![refused("not_found")]),
        (Req::new("GET", "/ipfs/not%20a%20cid"), 400, vec![refused("bad_request")]),
        (Req::new("DELETE", &format!("/ipfs/{CID}")), 405, vec![refused("method_not_allowed")]),
        // Unmarked under the platform path: the manifest's route table refuses it.
        (Req::new("GET", "/.well-known/acme-challenge/x"), 403, vec![routed("platform")]),
        // Through the router (credential accepted) to the add filter, which
        // answers an add without a file itself.
        (
            Req::new("POST", "/api/v0/add").header("Authorization", &format!("Bearer {TOKEN}")),
            400,
            vec![routed("proxy"), credential("accepted"), replies("bad_request")],
        ),
    ];
    for (req, status, counts) in simple {
        let got = stack.send(&req).unwrap_or_else(|e| panic!("{req:?}: {e}"));
        assert_eq!(got.status, status, "{req:?}: {}", got.text());
        for c in counts {
            bump(&mut want, c);
        }
    }

    // Adds with a body, all with the credential.
    let auth = format!("Bearer {TOKEN}");
    let h = [("Authorization", auth.as_str())];
    let ct = content_type();
    let send = |target: &str, ct: Option<&str>, b: &[u8]| {
        e2e::http::exchange(stack.envoy.port, &raw("POST", target, &h, ct, b)).unwrap_or_else(|e| panic!("{target}: {e}"))
    };
    let small = body(&[Entry::File("hello.txt", b"hello metrics\n")]);
    let res = send("/api/v0/add", Some(&ct), &small);
    assert_eq!(res.status, 200, "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), answers("rewritten")] {
        bump(&mut want, c);
    }
    // Events longer than max_line_bytes (256) whose end comes in the same
    // chunk are still rewritten: no long line (the count is of lines the
    // filter could not carry to their end; tests/add.rs cuts one).
    let long_name = "n".repeat(300);
    let long = body(&[Entry::File(&long_name, b"long name\n")]);
    let res = send("/api/v0/add", Some(&ct), &long);
    assert_eq!(res.status, 200, "{}", res.semantic());
    assert!(String::from_utf8_lossy(&res.body).contains(&format!("\"Name\":\"{long_name}\"")), "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), answers("rewritten")] {
        bump(&mut want, c);
    }
    // only-hash goes to Kubo, which stores nothing.
    let res = send("/api/v0/add?only-hash=true", Some(&ct), &small);
    assert_eq!(res.status, 200, "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), series(family(a, "ipfs_edge_add_only_hash_total"), None)] {
        bump(&mut want, c);
    }
    // Over max_upload_bytes (declared): 413 before anything is forwarded.
    // Only the head is sent: the answer comes before any body byte is read
    // (a client still sending would see its connection reset).
    let head = format!("POST /api/v0/add HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: {ct}\r\nContent-Length: 200000\r\n\r\n");
    let res = answer_to_head(stack.envoy.port, head.as_bytes());
    assert_eq!(res.status, 413, "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), replies("upload_too_large")] {
        bump(&mut want, c);
    }
    // An option that would change the CID: Kubo's error from the filter.
    let res = send("/api/v0/add?mode=0644", Some(&ct), &small);
    assert_eq!(res.status, 500, "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), replies("kubo_error")] {
        bump(&mut want, c);
    }
    // Not multipart: Kubo's 400, from the filter.
    let res = send("/api/v0/add", Some("text/plain"), b"not a form");
    assert_eq!(res.status, 400, "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), replies("bad_request")] {
        bump(&mut want, c);
    }
    // A cluster option the cluster cannot read: its own error answer, before
    // any event, passed unchanged.
    let res = send("/api/v0/add?replication-min=many", Some(&ct), &small);
    assert!(res.header("x-chunked-output").is_none(), "{}", res.semantic());
    for c in [routed("proxy"), credential("accepted"), answers("unchanged")] {
        bump(&mut want, c);
    }
    // GET on the RPC API: the router's 405 (Kubo's), before the add filter.
    let got = stack.send(&Req::new("GET", "/api/v0/add").header("Authorization", &auth)).unwrap();
    assert_eq!(got.status, 405);
    bump(&mut want, refused("method_not_allowed"));

    assert_eq!(scrape(&stack), want, "after the sequence");
}

/// Polls a probe until it answers `want`, counting every answer it got.
/// The scrape once `settled` holds of it, within 10 s. Each Wasm VM (one
/// per worker, and the main thread's) checks on its own and sets the same
/// gauges, so right after a transition the last writer may be a VM that has
/// not seen it yet: the gauges agree once every VM has.
fn scrape_when(stack: &EdgeStack, what: &str, settled: impl Fn(&BTreeMap<String, f64>) -> bool) -> BTreeMap<String, f64> {
    let start = Instant::now();
    loop {
        let m = scrape(stack);
        if settled(&m) {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: not so in 10 s:\n{m:#?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn wait_for(stack: &EdgeStack, want: u16, counts: &mut BTreeMap<u16, u32>) {
    let start = Instant::now();
    loop {
        let a = stack.send(&Req::new("GET", "/").header("User-Agent", "GoogleHC/1.0")).expect("answer");
        *counts.entry(a.status).or_default() += 1;
        if a.status == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no {want} in 10 s:\n{}", stack.envoy.log());
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn active_health_state_and_failed_checks_per_backend() {
    let health = r#"{"active": {"interval_ms": 200, "timeout_ms": 150, "unhealthy_threshold": 2, "healthy_threshold": 2}}"#;
    let stack = EdgeStack::start(r#"{"preset": "read-only"}"#, health);
    let config = edge_logic::health::HealthConfig::from_json(health.as_bytes()).unwrap();
    let checks: Vec<String> = config.active.unwrap().checks.iter().map(|c| c.name.clone()).collect();
    assert!(checks.iter().any(|c| c == "kubo_rpc"), "{checks:?}");
    let f = metrics::health::FAMILIES;
    let gauge = |c: &str| series(family(f, "ipfs_edge_health_check_healthy"), Some(c));
    let failures = |c: &str| series(family(f, "ipfs_edge_health_check_failures_total"), Some(c));
    let probes = |r: &str| series(family(f, "ipfs_edge_health_probes_total"), Some(r));
    let healthy = series(family(f, "ipfs_edge_health_healthy"), None);
    let value = |m: &BTreeMap<String, f64>, k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:#?}"));

    let mut answered = BTreeMap::new();
    let up = |m: &BTreeMap<String, f64>| m.get(&healthy) == Some(&1.0) && checks.iter().all(|c| m.get(&gauge(c)) == Some(&1.0));
    wait_for(&stack, 200, &mut answered);
    let m = scrape_when(&stack, "healthy, every check up", up);
    // A first check may have failed while the daemons warmed up: counts
    // from here on.
    let before: BTreeMap<&String, f64> = checks.iter().map(|c| (c, value(&m, &failures(c)))).collect();

    stack.kubo.stop();
    wait_for(&stack, 503, &mut answered);
    let m = scrape_when(&stack, "unhealthy, kubo_rpc alone down", |m| {
        m.get(&healthy) == Some(&0.0)
            && checks.iter().all(|c| m.get(&gauge(c)) == Some(if c == "kubo_rpc" { &0.0 } else { &1.0 }))
    });
    for c in &checks {
        let down = c == "kubo_rpc";
        // Two failures in a row make it unhealthy; more may have run since.
        let failed = value(&m, &failures(c)) - before[c];
        assert!(if down { failed >= 2.0 } else { failed == 0.0 }, "{c}: {failed} more failures");
    }

    stack.kubo.restart();
    wait_for(&stack, 200, &mut answered);
    let m = scrape_when(&stack, "healthy again, every check up", up);
    // Every probe answered is counted by its answer.
    let got = |s: u16| f64::from(answered.get(&s).copied().unwrap_or(0));
    assert_eq!((value(&m, &probes("healthy")), value(&m, &probes("unhealthy"))), (got(200), got(503)), "{answered:?}");
}
