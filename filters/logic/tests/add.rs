//! What add_response does with a request, callback by callback
//! (`edge_logic::add::flow`): which requests it takes, methods, the upload
//! limit, the only-hash detour, part counting, early refusals and when the
//! answer is rewritten. Host and wasm32 (wasm-bindgen-test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::Cell;

use edge_logic::add::config::AddConfig;
use edge_logic::add::flow::{AddFlow, Forward, OnRequestBody, OnRequestHeaders, RequestHeaders};
use edge_logic::add::reply::Reply;

const CT: &[u8] = b"multipart/form-data; boundary=b";
const CID: &str = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM";

fn config(json: &str) -> AddConfig {
    AddConfig::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn post(path: &str) -> RequestHeaders<'_> {
    RequestHeaders { method: Some(b"POST"), path: Some(path.as_bytes()), content_type: Some(CT), ..Default::default() }
}

fn reply(step: OnRequestHeaders) -> Reply {
    match step {
        OnRequestHeaders::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn body_reply(step: OnRequestBody) -> Reply {
    match step {
        OnRequestBody::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn text(r: &Reply) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

/// A multipart upload of one file part named `name`.
fn upload(name: &str, content: &str) -> Vec<u8> {
    format!(
        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// Feeds `bytes` as one chunk, counting the reads the flow asks for.
fn feed(flow: &mut AddFlow, c: &AddConfig, bytes: &[u8], eos: bool, reads: &Cell<u32>) -> OnRequestBody {
    flow.on_request_body(c, bytes.len(), eos, || {
        reads.set(reads.get() + 1);
        bytes.to_vec()
    })
}

#[test]
fn other_paths_and_undecodable_ones_pass_untouched() {
    let c = AddConfig::default();
    for path in ["/api/v0/cat", "/api/v0/add/x", "/api/v0/addx?arg=1", "/"] {
        let mut f = AddFlow::new();
        assert_eq!(f.on_request_headers(&c, &post(path)), OnRequestHeaders::Pass, "{path}");
        assert!(!f.rewriting());
    }
    let mut f = AddFlow::new();
    let raw = RequestHeaders { path: Some(b"/api/v0/add?x=\xff"), ..post("") };
    assert_eq!(f.on_request_headers(&c, &raw), OnRequestHeaders::Pass);
    assert_eq!(f.on_request_headers(&c, &RequestHeaders::default()), OnRequestHeaders::Pass);
    // Nothing later is read for a request the filter did not take.
    let reads = Cell::new(0);
    assert_eq!(feed(&mut f, &c, b"data", true, &reads), OnRequestBody::Continue);
    assert_eq!(reads.get(), 0);
    assert_eq!(f.on_response_headers(&c, || panic!("response headers read")), None);
}

#[test]
fn methods_are_kubos() {
    let c = AddConfig::default();
    let r = reply(AddFlow::new().on_request_headers(&c, &RequestHeaders { method: Some(b"GET"), ..post("/api/v0/add") }));
    assert_eq!((r.status, text(&r).as_str()), (405, "405 - Method Not Allowed\n"));
    assert!(r.headers.contains(&("allow", "OPTIONS, POST".into())));
    let r = reply(AddFlow::new().on_request_headers(&c, &RequestHeaders { method: None, ..post("/api/v0/add") }));
    assert_eq!(r.status, 405);
    let r = reply(AddFlow::new().on_request_headers(&c, &RequestHeaders { method: Some(b"OPTIONS"), ..post("/api/v0/add?x") }));
    assert_eq!((r.status, r.body.len()), (204, 0));
    // Refusals before the command runs carry no Server header; Kubo's
    // command errors do, sorted in with the others.
    assert_eq!(r.headers_as_sent("kubo/0.42.0").iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["allow", "vary"]);
    let e = Reply::kubo_error("x");
    let names: Vec<&str> = e.headers_as_sent("kubo/0.42.0").iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["access-control-allow-headers", "access-control-expose-headers", "content-type", "server", "trailer", "vary"]);
    assert!(!e.headers_as_sent("").iter().any(|(k, _)| *k == "server"));
}

#[test]
fn a_declared_upload_over_the_limit_is_refused_before_anything_is_sent() {
    let c = config(r#"{"max_upload_bytes": 100}"#);
    let at = |n: &str| AddFlow::new().on_request_headers(&c, &RequestHeaders { content_length: Some(n.as_bytes()), ..post("/api/v0/add") });
    let r = reply(at("101"));
    assert_eq!(r.status, 413);
    assert_eq!(text(&r), "{\"Message\":\"upload larger than this gateway's limit of 100 bytes\",\"Code\":0,\"Type\":\"error\"}\n");
    assert!(matches!(at("100"), OnRequestHeaders::Forward(_)));
    // No limit by default.
    let c = AddConfig::default();
    let big = RequestHeaders { content_length: Some(b"99999999999"), ..post("/api/v0/add") };
    assert!(matches!(AddFlow::new().on_request_headers(&c, &big), OnRequestHeaders::Forward(_)));
}

#[test]
fn a_streamed_upload_is_cut_where_it_passes_the_limit() {
    let c = config(r#"{"max_upload_bytes": 10}"#);
    let mut f = AddFlow::new();
    assert!(matches!(f.on_request_headers(&c, &post("/api/v0/add")), OnRequestHeaders::Forward(_)));
    let reads = Cell::new(0);
    assert_eq!(feed(&mut f, &c, b"--b\r\n", false, &reads), OnRequestBody::Continue);
    assert_eq!(body_reply(feed(&mut f, &c, b"abcdef", false, &reads)).status, 413);
}

#[test]
fn only_the_routers_proxy_mark_survives() {
    let c = AddConfig::default();
    let marked = |mark: Option<&'static [u8]>| match AddFlow::new().on_request_headers(&c, &RequestHeaders { mark, ..post("/api/v0/add") }) {
        OnRequestHeaders::Forward(f) => f.drop_mark,
        other => panic!("{other:?}"),
    };
    assert!(!marked(Some(b"proxy")));
    assert!(marked(Some(b"kubo")));
    assert!(marked(Some(b"gateway")));
    assert!(marked(None));
}

#[test]
fn only_hash_goes_to_kubo_unchanged_or_is_refused() {
    let c = AddConfig::default();
    let mut f = AddFlow::new();
    let step = f.on_request_headers(&c, &RequestHeaders { mark: Some(b"proxy"), ..post("/api/v0/add?n=true&w=1") });
    assert_eq!(step, OnRequestHeaders::Forward(Forward { drop_mark: false, mark: Some("kubo".into()), path: None }));
    // Kubo answers it itself: nothing of it is read or rewritten.
    assert!(!f.rewriting());
    let c = config(r#"{"only_hash_backend": ""}"#);
    let r = reply(AddFlow::new().on_request_headers(&c, &post("/api/v0/add?only-hash=1")));
    assert_eq!(r, Reply::only_hash_refused());
    assert_eq!((r.status, text(&r).as_str()), (500, "{\"Message\":\"only-hash is not supported when adding to cluster\",\"Code\":0,\"Type\":\"error\"}\n"));
}

#[test]
fn the_query_is_rewritten_for_the_cluster_only_when_it_changes() {
    let c = AddConfig::default();
    let path = |q: &str| match AddFlow::new().on_request_headers(&c, &post(q)) {
        OnRequestHeaders::Forward(f) => f.path,
        other => panic!("{other:?}"),
    };
    assert_eq!(path("/api/v0/add?w=1"), Some("/api/v0/add?wrap-with-directory=true".into()));
    assert_eq!(path("/api/v0/add"), None);
    // Kubo's early refusals come from the query reader.
    let r = reply(AddFlow::new().on_request_headers(&c, &post("/api/v0/add?mode=0644")));
    assert_eq!(r.status, 500);
    let r = reply(AddFlow::new().on_request_headers(&c, &RequestHeaders { content_type: None, ..post("/api/v0/add") }));
    assert_eq!((r.status, text(&r).as_str()), (400, "file argument 'path' is required\n"));
}

#[test]
fn an_upload_without_parts_gets_kubos_error() {
    let c = AddConfig::default();
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    let reads = Cell::new(0);
    let r = body_reply(feed(&mut f, &c, b"--b--\r\n", true, &reads));
    assert_eq!(text(&r), "{\"Message\":\"expected a file argument\",\"Code\":0,\"Type\":\"error\"}\n");
}

#[test]
fn a_broken_first_part_header_is_refused_as_kubo_refuses_it() {
    let c = AddConfig::default();
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    let reads = Cell::new(0);
    let r = body_reply(feed(&mut f, &c, b"--b\r\nno colon here\r\n\r\nx\r\n--b--\r\n", true, &reads));
    assert_eq!(r.status, 500);
    assert!(text(&r).starts_with("{\"Message\":\"malformed MIME header"), "{}", text(&r));
}

#[test]
fn the_upload_is_read_only_while_the_answer_needs_it() {
    let c = AddConfig::default();
    let data = upload("f.txt", "hello");
    // The first chunk holds the whole part header block.
    let (head, tail) = data.split_at(data.len() - 8);
    // Without progress or wrap the first part settles it: later chunks
    // are counted, not read.
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    let reads = Cell::new(0);
    assert_eq!(feed(&mut f, &c, head, false, &reads), OnRequestBody::Continue);
    assert_eq!(feed(&mut f, &c, tail, true, &reads), OnRequestBody::Continue);
    assert_eq!(reads.get(), 1);
    // With progress every chunk is read, for the names.
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add?progress=true"));
    let reads = Cell::new(0);
    feed(&mut f, &c, head, false, &reads);
    feed(&mut f, &c, tail, true, &reads);
    assert_eq!(reads.get(), 2);
}

#[test]
fn a_structure_it_cannot_follow_is_said_once_and_then_left_alone() {
    let c = AddConfig::default();
    let reads = Cell::new(0);
    let huge = format!("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\nX: {}\r\n", "y".repeat(20_000));
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add?progress=1"));
    assert_eq!(feed(&mut f, &c, huge.as_bytes(), false, &reads), OnRequestBody::StructureLost);
    let before = reads.get();
    assert_eq!(feed(&mut f, &c, b"more", true, &reads), OnRequestBody::Continue);
    assert_eq!(reads.get(), before);
    assert!(f.rewriting());
}

fn streaming_headers() -> Vec<(String, String)> {
    [(":status", "200"), ("x-chunked-output", "1"), ("content-type", "application/json"), ("server", "cluster")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_answer_is_rewritten_only_when_the_cluster_streams() {
    let c = AddConfig::default();
    // The cluster's own error answer passes as it is.
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    let error = vec![(":status".to_string(), "500".to_string())];
    assert_eq!(f.on_response_headers(&c, || Some(error)), None);
    assert!(!f.rewriting());
    assert_eq!(f.on_response_body(3, true, || panic!("body read")).replace, None);
    // A streamed answer gets Kubo's headers and Kubo's lines.
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    let reads = Cell::new(0);
    feed(&mut f, &c, &upload("", "hello"), true, &reads);
    let headers = f.on_response_headers(&c, || Some(streaming_headers())).expect("rewritten headers");
    assert!(headers.contains(&("server".to_string(), "kubo/0.42.0".to_string())), "{headers:?}");
    let line = format!("{{\"Name\":\"\",\"Hash\":\"{CID}\",\"Size\":\"13\"}}\n");
    let step = f.on_response_body(line.len(), true, || line.clone().into_bytes());
    let out = String::from_utf8(step.replace.expect("rewritten line")).unwrap();
    assert_eq!(out, format!("{{\"Name\":\"{CID}\",\"Hash\":\"{CID}\",\"Size\":\"13\"}}\n"));
    assert_eq!(step.long_lines, 0);
}

#[test]
fn no_response_headers_leaves_the_rewrite_on() {
    let c = AddConfig::default();
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    assert_eq!(f.on_response_headers(&c, || None), None);
    assert!(f.rewriting());
}

#[test]
fn a_line_cut_off_before_trailers_is_handed_back() {
    let c = config(r#"{"max_line_bytes": 256}"#);
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    f.on_response_headers(&c, || Some(streaming_headers()));
    // A large chunk ending inside an event: its tail is carried.
    let mut chunk = format!("{{\"Name\":\"a\",\"Hash\":\"{CID}\",\"Size\":\"1\"}}\n").repeat(200);
    chunk.push_str("{\"Name\":\"b\",\"Ha");
    let step = f.on_response_body(chunk.len(), false, || chunk.clone().into_bytes());
    assert!(step.replace.is_some());
    assert_eq!(f.on_response_trailers(), b"{\"Name\":\"b\",\"Ha".to_vec());
    assert!(f.on_response_trailers().is_empty());
    // Untouched requests carry nothing.
    assert!(AddFlow::new().on_response_trailers().is_empty());
}

#[test]
fn a_line_over_the_cap_is_reported() {
    let c = config(r#"{"max_line_bytes": 256}"#);
    let mut f = AddFlow::new();
    f.on_request_headers(&c, &post("/api/v0/add"));
    f.on_response_headers(&c, || Some(streaming_headers()));
    // A line still open after more than the cap passes as it comes.
    let long = format!("{{\"Name\":\"{}", "n".repeat(400));
    let step = f.on_response_body(long.len(), false, || long.clone().into_bytes());
    assert_eq!(step.long_lines, 1);
    assert_eq!(step.replace, None);
}
