//! The router filter in a real Envoy (manifests/envoy/envoy.yaml, all three
//! filters) in front of four recording backends: every route, every
//! refusal with its exact answer, credentials, and the hostile corpus
//! (filters/logic/tests/corpus) over HTTP/1.0, HTTP/1.1 and HTTP/2, with
//! zero requests reaching a backend they should not.

use e2e::edge::{Answer, EdgeStack, Proto, Req};
use e2e::envoy::{Envoy, Patch};
use e2e::recorder::Seen;
use serde_json::Value;

const CORPUS: &str = include_str!("../../../filters/logic/tests/corpus/hostile.jsonl");
const CORPUS_CONFIG: &str = include_str!("../../../filters/logic/tests/corpus/router-config.json");
const TOKEN: &str = "corpus-token-0123456789";
/// alice:wonderland-42 (the corpus's test user).
const ALICE: &str = "Basic YWxpY2U6d29uZGVybGFuZC00Mg==";
const CID0: &str = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM";
const CID1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

/// The corpus configuration on one line (it goes into a YAML scalar).
fn corpus_config() -> String {
    serde_json::from_str::<Value>(CORPUS_CONFIG).unwrap().to_string()
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// What became of one request.
#[derive(Debug)]
enum Outcome {
    /// Reached exactly this backend, once, with this record.
    Backend(String, Box<Seen>),
    /// Answered at the edge, no backend saw it.
    Edge(Answer),
    /// Envoy reset or closed instead of answering; no backend saw it.
    #[allow(dead_code)] // read in failure messages
    Reset(String),
    /// Anything else (several backends, or a backend plus no answer).
    Broken(String),
}

fn outcome(stack: &EdgeStack, req: &Req) -> Outcome {
    let answer = stack.send(req);
    let seen = stack.take_seen();
    match (answer, seen.len()) {
        (Ok(a), 0) => Outcome::Edge(a),
        (Err(e), 0) => Outcome::Reset(e),
        (Ok(a), 1) if a.header("x-recorder") == Some(seen[0].0.as_str()) => {
            let (name, s) = seen.into_iter().next().unwrap();
            Outcome::Backend(name, Box::new(s))
        }
        (a, _) => Outcome::Broken(format!("answer {a:?}, backends saw {seen:?}")),
    }
}

/// A request the router let through reaches its backend marked, without
/// the credential that was for the edge.
fn check_backend(o: &Outcome, want: &str) -> Result<(), String> {
    match o {
        Outcome::Backend(name, s) if name == want => {
            if s.header("x-ipfs-edge-backend") != Some(want) {
                return Err(format!("reached {want} marked {:?}", s.header("x-ipfs-edge-backend")));
            }
            if s.header("authorization").is_some() {
                return Err(format!("reached {want} with the Authorization header"));
            }
            Ok(())
        }
        other => Err(format!("expected backend {want}, got {other:?}")),
    }
}

/// A refusal by the router: Kubo's error JSON (or, for a non-POST on the
/// RPC API, Kubo's plain-text 405), never a backend.
fn is_router_answer(a: &Answer) -> bool {
    a.header("x-content-type-options") == Some("nosniff")
}

/// Whether Envoy's native read route takes this request (the corpus's policy
/// has a public gateway): it then reaches the gateway without the router,
/// also where the router would refuse the root or the query, which Kubo's
/// gateway judges itself (edge_logic::router::native_read).
fn native(method: &str, target: &str) -> bool {
    // An absolute-form target reaches routing as its path.
    let path = ["http://", "https://"]
        .iter()
        .find_map(|s| target.strip_prefix(s))
        .map_or(target, |rest| rest.find('/').map_or("/", |i| &rest[i..]));
    edge_logic::router::native_read::is_native_read(method, path.as_bytes())
}

#[derive(Default)]
struct Tally {
    rows: usize,
    native: usize,
    backend: usize,
    by_router: usize,
    by_health: usize,
    by_envoy: usize,
}

/// Checks one corpus row's outcome. `strict`: the row's own protocol, where
/// the status must be exactly the expected one. Over another protocol a row
/// the router must refuse may be refused earlier by Envoy itself (its
/// HTTP/2 codec refuses what HTTP/2 forbids, e.g. a CONNECT with a path):
/// still nothing may reach a backend.
fn check_row(row: &Value, o: &Outcome, strict: bool, t: &mut Tally) -> Result<(), String> {
    t.rows += 1;
    let expect = &row["expect"];
    if native(row["method"].as_str().unwrap(), row["target"].as_str().unwrap()) {
        t.native += 1;
        return check_backend(o, "gateway");
    }
    if let Some(b) = expect.as_str() {
        if b == "health" {
            // Answered by the health filter in front (passive, all).
            return match o {
                Outcome::Edge(a) if a.status == 200 && a.text() == "{\"status\":\"ok\"}\n" || row["method"] == "HEAD" && a_status(o) == Some(200) => {
                    t.by_health += 1;
                    Ok(())
                }
                other => Err(format!("expected the health answer, got {other:?}")),
            };
        }
        t.backend += 1;
        // An add the router let through meets the add filter behind it,
        // which answers an add without a file as Kubo does (the corpus
        // sends no body).
        let add = row["target"].as_str().unwrap().split('?').next() == Some("/api/v0/add");
        if let (true, "proxy", Outcome::Edge(a)) = (add, b, o) {
            return if a.status == 400 && a.text() == "file argument 'path' is required\n" {
                Ok(())
            } else {
                Err(format!("expected the add filter's answer, got {a:?}"))
            };
        }
        return check_backend(o, b);
    }
    let want = row.get("envoy").and_then(Value::as_u64).or(expect.as_u64()).expect("status") as u16;
    match o {
        Outcome::Edge(a) if a.status == want && (is_router_answer(a) || row.get("envoy").is_some()) => {
            if is_router_answer(a) {
                t.by_router += 1
            } else {
                t.by_envoy += 1
            }
            Ok(())
        }
        Outcome::Edge(a) if !strict && !is_router_answer(a) && (400..500).contains(&a.status) => {
            t.by_envoy += 1;
            Ok(())
        }
        Outcome::Reset(_) if !strict => {
            t.by_envoy += 1;
            Ok(())
        }
        other => Err(format!("expected {want} from the edge, got {other:?}")),
    }
}

fn a_status(o: &Outcome) -> Option<u16> {
    match o {
        Outcome::Edge(a) => Some(a.status),
        _ => None,
    }
}

fn corpus_rows() -> Vec<Value> {
    CORPUS.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("corpus row")).collect()
}

fn row_request(row: &Value, proto: Proto) -> Req {
    let mut r = Req::new(row["method"].as_str().unwrap(), row["target"].as_str().unwrap()).over(proto);
    for h in row["headers"].as_array().unwrap() {
        r = r.header(h[0].as_str().unwrap(), h[1].as_str().unwrap());
    }
    r
}

#[test]
fn hostile_corpus_through_envoy_over_http_1_0_1_1_and_2() {
    let stack = EdgeStack::start(&corpus_config(), "{}");
    let rows = corpus_rows();
    assert!(rows.len() >= 300, "{} rows", rows.len());
    let mut failures = Vec::new();
    let mut own = Tally::default();
    for row in &rows {
        let proto = Proto::parse(row["http"].as_str().unwrap());
        let o = outcome(&stack, &row_request(row, proto));
        if let Err(e) = check_row(row, &o, true, &mut own) {
            failures.push(format!("{} ({:?}): {e}", row["id"], proto));
        }
    }
    let mut cross = Vec::new();
    for proto in [Proto::Http10, Proto::Http11, Proto::Http2] {
        let mut t = Tally::default();
        for row in &rows {
            let o = outcome(&stack, &row_request(row, proto));
            if let Err(e) = check_row(row, &o, false, &mut t) {
                failures.push(format!("{} (replayed over {proto:?}): {e}", row["id"]));
            }
        }
        cross.push((proto, t));
    }
    let mut report = format!(
        "hostile corpus through Envoy: {} rows over their own protocol: {} gateway reads routed natively, {} reached their backend, {} refused by the router, {} answered by health, {} refused by Envoy first\n",
        own.rows, own.native, own.backend, own.by_router, own.by_health, own.by_envoy
    );
    for (p, t) in &cross {
        report.push_str(&format!(
            "  all {} over {p:?}: {} natively, {} reached their backend, {} refused by the router, {} answered by health, {} refused by Envoy first\n",
            t.rows, t.native, t.backend, t.by_router, t.by_health, t.by_envoy
        ));
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{} failures:\n{}\n{report}\nenvoy log:\n{}", failures.len(), failures.join("\n"), stack.envoy.log());
}

/// Envoy Gateway's path handling (normalize_path always, merge_slashes
/// and UNESCAPE_AND_REDIRECT by default): Envoy rewrites or redirects
/// before the filters, so the corpus's statuses do not hold, but the
/// policy must: whatever reaches a backend is what the router allows for
/// the path that backend receives, and every row the corpus refuses that
/// reached a backend did so only in its rewritten, allowed form.
#[test]
fn under_envoy_gateway_path_normalisation_nothing_forbidden_gets_through() {
    let extra = vec![
        Patch::Manager("normalize_path", "true"),
        Patch::Manager("merge_slashes", "true"),
        Patch::Manager("path_with_escaped_slashes_action", "UNESCAPE_AND_REDIRECT"),
    ];
    let stack = EdgeStack::start_patched(&corpus_config(), "{}", extra);
    let policy = edge_logic::router::Policy::from_json(CORPUS_CONFIG.as_bytes()).unwrap();
    let mut failures = Vec::new();
    let (mut rows, mut reached, mut rewritten) = (0, 0, 0);
    for row in corpus_rows() {
        rows += 1;
        let req = row_request(&row, Proto::parse(row["http"].as_str().unwrap()));
        let o = outcome(&stack, &req);
        if let Outcome::Broken(e) = &o {
            failures.push(format!("{}: {e}", row["id"]));
            continue;
        }
        let Outcome::Backend(name, seen) = &o else { continue };
        reached += 1;
        // Decide again on what the backend received (method and path as
        // it read them, the client's headers): the same backend.
        let headers: Vec<(String, String)> = req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
        let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let again = edge_logic::router::classify(&policy, &edge_logic::router::Request { method: &seen.method, path: seen.target.as_bytes(), headers: &h });
        let by_native_route = name == "gateway" && native(&seen.method, &seen.target);
        if again.backend().map(|b| b.header_value()) != Some(name.as_str()) && !by_native_route {
            failures.push(format!("{}: {} {} reached {name}, which the policy does not allow ({again:?})", row["id"], seen.method, seen.target));
        }
        if row["expect"].as_str() != Some(name.as_str()) {
            rewritten += 1;
        }
    }
    eprintln!("under Envoy Gateway path handling: {rows} rows, {reached} reached a backend ({rewritten} of them only after Envoy rewrote the path into an allowed one)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_route_reaches_its_backend_marked_and_without_the_credential() {
    let stack = EdgeStack::start(&corpus_config(), "{}");
    let b = bearer();
    let cases: Vec<(Req, &str)> = vec![
        (Req::new("GET", &format!("/ipfs/{CID0}/dir/file.txt")), "gateway"),
        (Req::new("HEAD", &format!("/ipfs/{CID1}")), "gateway"),
        (Req::new("GET", "/ipns/example.org/index.html"), "gateway"),
        (Req::new("OPTIONS", &format!("/ipfs/{CID1}")), "gateway"),
        // Natively routed reads: marked and stripped of the credential by Envoy's route, and a
        // root that is no CID judged by Kubo's gateway; with an escape, the router's.
        (Req::new("GET", &format!("/ipfs/{CID0}/a.txt")).header("Authorization", &b).header("x-ipfs-edge-backend", "rest"), "gateway"),
        (Req::new("GET", "/ipfs/not-a-cid"), "gateway"),
        (Req::new("GET", &format!("/ipfs/{CID0}/caf%C3%A9.txt")).header("Authorization", &b), "gateway"),
        // A read of the cluster's POST /ipfs/gc is a gateway read (of the root "gc", which
        // Kubo's gateway refuses), whatever mark the client sends.
        (Req::new("GET", "/ipfs/gc").header("x-ipfs-edge-backend", "rest"), "gateway"),
        (Req::new("POST", "/api/v0/version"), "kubo"),
        (Req::new("POST", &format!("/api/v0/cat?arg={CID0}")), "kubo"),
        (Req::new("POST", &format!("/api/v0/cat/{CID1}")), "kubo"),
        (Req::new("POST", &format!("/api/v0/dag/get?arg=/ipfs/{CID1}/a")), "kubo"),
        (Req::new("POST", "/api/v0/name/resolve?arg=/ipns/example.org"), "kubo"),
        (Req::new("POST", "/api/v0/pin/ls"), "proxy"),
        (Req::new("POST", "/api/v0/repo/stat"), "proxy"),
        (Req::new("OPTIONS", "/api/v0/pin/add"), "proxy"),
        (Req::new("POST", &format!("/api/v0/pin/add?arg={CID0}")).header("Authorization", &b), "proxy"),
        (Req::new("POST", &format!("/api/v0/pin/rm/{CID1}")).header("Authorization", ALICE), "proxy"),
        (Req::new("POST", "/api/v0/block/put").header("Authorization", &b), "proxy"),
        (Req::new("POST", "/api/v0/dag/put").header("Authorization", &b), "proxy"),
        (Req::new("POST", "/api/v0/repo/gc").header("Authorization", &b), "proxy"),
        (Req::new("GET", "/id"), "rest"),
        (Req::new("GET", "/version"), "rest"),
        (Req::new("GET", "/peers"), "rest"),
        (Req::new("GET", "/pins"), "rest"),
        (Req::new("GET", &format!("/pins/{CID0}")), "rest"),
        (Req::new("GET", "/allocations"), "rest"),
        (Req::new("GET", "/health"), "rest"),
        (Req::new("GET", "/health/graph"), "rest"),
        (Req::new("GET", "/monitor/metrics/freespace"), "rest"),
        (Req::new("POST", "/add").header("Authorization", &b), "rest"),
        (Req::new("POST", &format!("/pins/{CID1}")).header("Authorization", &b), "rest"),
        (Req::new("DELETE", &format!("/pins/{CID1}")).header("Authorization", ALICE), "rest"),
        (Req::new("POST", &format!("/pins/ipfs/{CID0}/a/b")).header("Authorization", &b), "rest"),
        (Req::new("POST", "/pins/recover").header("Authorization", &b), "rest"),
        (Req::new("POST", "/ipfs/gc").header("Authorization", &b), "rest"),
        // A client's own mark is replaced by the router's decision.
        (Req::new("POST", "/api/v0/version").header("x-ipfs-edge-backend", "proxy"), "kubo"),
        (Req::new("GET", "/id").header("x-ipfs-edge-backend", "gateway"), "rest"),
    ];
    let mut failures = Vec::new();
    for (req, want) in &cases {
        for proto in [Proto::Http11, Proto::Http2] {
            let req = req.clone().over(proto);
            let o = outcome(&stack, &req);
            let r = check_backend(&o, want).and_then(|()| match &o {
                // The path reaches the backend as the client sent it.
                Outcome::Backend(_, s) if s.target == req.target && s.method == req.method => Ok(()),
                Outcome::Backend(_, s) => Err(format!("backend got {} {}", s.method, s.target)),
                _ => unreachable!(),
            });
            if let Err(e) = r {
                failures.push(format!("{} {} over {proto:?}: {e}", req.method, req.target));
            }
        }
    }
    assert!(failures.is_empty(), "{}\nenvoy log:\n{}", failures.join("\n"), stack.envoy.log());
}

#[test]
fn adds_go_to_the_proxy_and_only_hash_adds_to_kubo() {
    let stack = EdgeStack::start(&corpus_config(), "{}");
    let body = e2e::upload::body(&[e2e::upload::Entry::File("a.txt", b"hello")]);
    let ct = e2e::upload::content_type();
    for (query, want) in [("", "proxy"), ("?only-hash=true", "kubo"), ("?n=1&progress=1", "kubo")] {
        let mut raw = format!(
            "POST /api/v0/add{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nx-ipfs-edge-backend: kubo\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            bearer(),
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        let r = e2e::http::exchange(stack.envoy.port, &raw).unwrap();
        assert_eq!(r.status, 200, "{query}: {}", String::from_utf8_lossy(&r.raw));
        let seen = stack.take_seen();
        assert_eq!(seen.len(), 1, "{query}: {seen:?}");
        assert_eq!((seen[0].0.as_str(), seen[0].1.header("x-ipfs-edge-backend")), (want, Some(want)), "{query}");
    }
    // Without a credential an add reaches nothing.
    let r = e2e::http::exchange(stack.envoy.port, &e2e::http::request("POST", "/api/v0/add?only-hash=true", Some(&ct), &body)).unwrap();
    assert_eq!(r.status, 401);
    assert!(stack.take_seen().is_empty());
}

/// Every kind of refusal, with the exact answer a client gets.
#[test]
fn every_refusal_and_its_answer() {
    let stack = EdgeStack::start(&corpus_config(), "{}");
    let json = |m: &str, code: u8| format!("{{\"Message\":{},\"Code\":{code},\"Type\":\"error\"}}\n", serde_json::Value::String(m.into()));
    let challenge = "Bearer realm=\"ipfs-edge\", Basic realm=\"ipfs-edge\", charset=\"UTF-8\"";
    // (request, status, body, [header, value] the answer must carry)
    type Case<'a> = (Req, u16, String, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (Req::new("POST", "/api/v0/shutdown"), 403, json("403 - Forbidden: command \"shutdown\" is not allowed at this endpoint", 4), vec![]),
        (Req::new("POST", "/api/v0/config/show").header("Authorization", &bearer()), 403, json("403 - Forbidden: command \"config/show\" is not allowed at this endpoint", 4), vec![]),
        (Req::new("POST", "/api/v0/key/gen?arg=x"), 403, json("403 - Forbidden: command \"key/gen\" is not allowed at this endpoint", 4), vec![]),
        (Req::new("POST", "/api/v0/version/deps"), 403, json("403 - Forbidden: command \"version/deps\" is not allowed at this endpoint", 4), vec![]),
        (Req::new("POST", "/api/v0/add"), 401, json("401 - Unauthorized: credentials required", 4), vec![("www-authenticate", challenge)]),
        (Req::new("POST", "/api/v0/add").header("Authorization", "Bearer wrong-token-0123456789"), 401, json("401 - Unauthorized: invalid credentials", 4), vec![("www-authenticate", challenge)]),
        (Req::new("POST", "/pins/recover"), 401, json("401 - Unauthorized: credentials required", 4), vec![("www-authenticate", challenge)]),
        (
            Req::new("GET", "/api/v0/version"),
            405,
            "405 - Method Not Allowed\n".into(),
            vec![("allow", "OPTIONS, POST"), ("content-type", "text/plain; charset=utf-8"), ("vary", "Origin")],
        ),
        (Req::new("POST", &format!("/ipfs/{CID0}")), 405, json("405 - Method Not Allowed", 0), vec![("allow", "GET, HEAD, OPTIONS")]),
        (Req::new("DELETE", "/id"), 405, json("405 - Method Not Allowed", 0), vec![("allow", "GET, OPTIONS")]),
        (Req::new("POST", "/"), 405, json("405 - Method Not Allowed", 0), vec![("allow", "GET, HEAD")]),
        (Req::new("GET", "/nothing/here"), 404, json("404 page not found", 0), vec![]),
        // (An escape keeps this read off the native route, which leaves the root to Kubo's gateway.)
        (Req::new("GET", "/ipfs/not%20a%20cid"), 400, json("invalid CID \"not a cid\"", 1), vec![]),
        (Req::new("POST", "/api/v0/cat?arg=not-a-cid"), 400, json("invalid CID \"not-a-cid\" in argument", 1), vec![]),
        (Req::new("POST", "/api/v0/version").header("X-HTTP-Method-Override", "GET"), 400, json("x-http-method-override is not accepted", 1), vec![]),
    ];
    let mut failures = Vec::new();
    for (req, status, body, headers) in &cases {
        for proto in [Proto::Http10, Proto::Http11, Proto::Http2] {
            let req = req.clone().over(proto);
            match outcome(&stack, &req) {
                Outcome::Edge(a) => {
                    let mut bad = Vec::new();
                    if a.status != *status || a.text() != *body {
                        bad.push(format!("got {} {:?}", a.status, a.text()));
                    }
                    for (k, v) in headers {
                        if a.header(k) != Some(*v) {
                            bad.push(format!("{k}: {:?}", a.header(k)));
                        }
                    }
                    if a.header("x-content-type-options") != Some("nosniff") {
                        bad.push("no nosniff".into());
                    }
                    if !bad.is_empty() {
                        failures.push(format!("{} {} over {proto:?}: want {status} {body:?}; {}", req.method, req.target, bad.join("; ")));
                    }
                }
                other => failures.push(format!("{} {} over {proto:?}: {other:?}", req.method, req.target)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn credentials_accepted_and_refused() {
    let stack = EdgeStack::start(&corpus_config(), "{}");
    let pin = format!("/api/v0/pin/add?arg={CID0}");
    let ok = [bearer(), format!("bearer {TOKEN}"), format!("BEARER {TOKEN}"), ALICE.to_string(), ALICE.replace("Basic", "basic")];
    for auth in &ok {
        let o = outcome(&stack, &Req::new("POST", &pin).header("Authorization", auth));
        check_backend(&o, "proxy").unwrap_or_else(|e| panic!("{auth}: {e}"));
    }
    let refused = [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        "Basic YWxpY2U6d3Jvbmc=".to_string(), // alice:wrong
        "Basic bWFsbG9yeTp3b25kZXJsYW5kLTQy".to_string(), // mallory:wonderland-42
        format!("Token {TOKEN}"),
        "Bearer".to_string(),
        String::new(),
    ];
    for auth in &refused {
        match outcome(&stack, &Req::new("POST", &pin).header("Authorization", auth)) {
            Outcome::Edge(a) if a.status == 401 && a.header("www-authenticate").is_some() => {
                assert!(!a.text().contains(TOKEN) && !a.text().contains("wonderland"), "a secret echoed: {}", a.text());
            }
            other => panic!("{auth:?}: {other:?}"),
        }
    }
    // Two Authorization headers, one of them valid: refused (a backend
    // might read the other one).
    let two = Req::new("POST", &pin).header("Authorization", &bearer()).header("Authorization", "Bearer other-token-0123456789");
    assert!(matches!(outcome(&stack, &two), Outcome::Edge(a) if a.status == 401));
    // With forward_authorization the credential goes on to the backend.
    let fwd = serde_json::json!({"credentials": {"bearer_tokens": [TOKEN]}, "forward_authorization": true}).to_string();
    let stack = EdgeStack::start(&fwd, "{}");
    match outcome(&stack, &Req::new("POST", &pin).header("Authorization", &bearer())) {
        Outcome::Backend(name, s) if name == "proxy" => assert_eq!(s.header("authorization"), Some(bearer().as_str())),
        other => panic!("{other:?}"),
    }
}

/// Without the router nothing marks requests: the route table refuses them
/// all rather than guess a backend.
#[test]
fn without_the_router_every_request_is_refused() {
    let stack = EdgeStack::start(&corpus_config(), "{}");
    let patches: Vec<Patch> = stack
        .backends()
        .iter()
        .zip(["gateway", "cluster_proxy", "kubo_rpc", "cluster_rest"])
        .map(|(b, c)| Patch::ClusterPort(c, b.port()))
        .collect();
    let bare = Envoy::start_keeping(e2e::edge::CONFIG, &patches, &["health", "add_response"]);
    // (A gateway read with an escape: a clean one takes the native route, below.)
    for target in [format!("/ipfs/{CID0}/a%20b"), "/id".into(), "/api/v0/version".into()] {
        let req = Req::new(if target.starts_with("/api") { "POST" } else { "GET" }, &target);
        let a = e2e::edge::send(bare.port, &req).unwrap();
        assert_eq!(a.status, 403, "{target}");
        assert_eq!(a.text(), "{\"Message\":\"403 - Forbidden: no route\",\"Code\":4,\"Type\":\"error\"}\n");
    }
    assert!(stack.take_seen().is_empty());
    // Gateway reads that Envoy routes itself need no router.
    e2e::edge::send(bare.port, &Req::new("GET", &format!("/ipfs/{CID0}"))).unwrap();
    let seen = stack.take_seen();
    assert_eq!(seen.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["gateway"], "{seen:?}");
}
