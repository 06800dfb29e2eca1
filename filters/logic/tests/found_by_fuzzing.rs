//! Inputs the fuzz targets (filters/fuzz) found wrong, each kept as a plain
//! test of the behaviour it broke. Host and wasm32 (wasm-bindgen-test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edge_logic::add::config::AddConfig;
use edge_logic::add::flow::{AddFlow, OnRequestBody, OnRequestHeaders, RequestHeaders};
use edge_logic::health::HealthConfig;
use edge_logic::router::Policy;

/// plugin_config: text after the JSON object was ignored, so a pasted-twice
/// or truncated-and-appended configuration was taken for its first object
/// alone (the second `preset` here would have been silently dropped).
#[test]
fn text_after_the_configuration_object_is_refused() {
    let e = Policy::from_json(b"{\"preset\":\"none\",\"gateway\":\"deny\"}\nww").unwrap_err();
    assert!(e.starts_with("router configuration: trailing characters"), "{e}");
    let e = Policy::from_json(b"{\"preset\":\"none\"}{\"preset\":\"field-notes\"}").unwrap_err();
    assert!(e.starts_with("router configuration: trailing characters"), "{e}");
    for input in [&b"{} x"[..], b"{}{}", b"{}\n]"] {
        let shown = String::from_utf8_lossy(input);
        let e = AddConfig::from_json(input).expect_err(&shown);
        assert!(e.starts_with("add_response configuration: trailing characters"), "{e}");
        let e = HealthConfig::from_json(input).expect_err(&shown);
        assert!(e.starts_with("health configuration: trailing characters"), "{e}");
        let e = Policy::from_json(input).expect_err(&shown);
        assert!(e.starts_with("router configuration: trailing characters"), "{e}");
    }
    // Whitespace around the object is still fine.
    assert!(Policy::from_json(b"\n {\"preset\":\"none\"} \n").is_ok());
    assert!(AddConfig::from_json(b" {} \r\n").is_ok());
    assert!(HealthConfig::from_json(b"{}\n").is_ok());
}

/// plugin_config: a health path holding a control character (here DEL) was
/// accepted by health and the router, but the router's path decoder refuses
/// it (400) when a client sends it, so the probe path configured could never
/// be reached through the router. Every configured path now follows one rule
/// (`edge_logic::path`).
#[test]
fn a_configured_path_a_client_cannot_send_is_refused() {
    let e = Policy::from_json(b"{\"health_paths\":[\"/he\\u007fa1l@thatus\"]}").unwrap_err();
    assert!(e.starts_with("router configuration key `health_paths[0]`"), "{e}");
    let e = HealthConfig::from_json(b"{\"paths\":[\"/he\\u007fa1l\"]}").unwrap_err();
    assert!(e.starts_with("health configuration key `paths[0]`"), "{e}");
    for p in ["/a\\u0001", "/a\\tb", "/a/", "/a//b", "/a/../b"] {
        let json = format!("{{\"paths\":[\"{p}\"]}}");
        assert!(HealthConfig::from_json(json.as_bytes()).is_err(), "{p}");
        let json = format!("{{\"health_paths\":[\"{p}\"]}}");
        assert!(Policy::from_json(json.as_bytes()).is_err(), "{p}");
    }
    assert!(HealthConfig::from_json(b"{\"paths\":[\"/healthz\",\"/\"]}").is_ok());
    assert!(Policy::from_json(b"{\"health_paths\":[\"/healthz\",\"/\"]}").is_ok());
}

/// add_flow: an only-hash add, sent on to Kubo, was not counted as it
/// streamed, so without Content-Length it passed `max_upload_bytes` whole
/// (with one it was refused, as every other add is).
#[test]
fn a_streamed_only_hash_upload_is_cut_where_it_passes_the_limit() {
    let c = AddConfig::from_json(br#"{"max_upload_bytes": 10}"#).unwrap();
    let req = RequestHeaders {
        method: Some(b"POST"),
        path: Some(b"/api/v0/add?n=1"),
        content_type: Some(b"multipart/form-data; boundary=b"),
        ..Default::default()
    };
    let mut f = AddFlow::new();
    match f.on_request_headers(&c, &req) {
        OnRequestHeaders::Forward(fw) => assert_eq!(fw.mark.as_deref(), Some("kubo")),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.on_request_body(&c, 6, false, || b"--b\r\nC".to_vec()), OnRequestBody::Continue);
    match f.on_request_body(&c, 5, false, || b"ontent".to_vec()) {
        OnRequestBody::Reply(r) => assert_eq!(r.status, 413),
        other => panic!("the 11th byte passed the limit of 10: {other:?}"),
    }
    // Within the limit, it passes, and its answer is Kubo's own, untouched.
    let mut f = AddFlow::new();
    assert!(matches!(f.on_request_headers(&c, &req), OnRequestHeaders::Forward(_)));
    assert_eq!(f.on_request_body(&c, 10, true, || b"--b--\r\n\r\n\r\n".to_vec()), OnRequestBody::Continue);
    assert!(!f.rewriting());
    assert_eq!(f.on_response_trailers(), b"");
}
