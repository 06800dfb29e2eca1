//! Each filter's `[package.metadata.proxy-wasm] callbacks` list is exactly
//! the callbacks its code implements: `./x build` unexports every other
//! one (filters/trim), so a callback missing from the list would silently
//! never run.

use consistency::callbacks;

const FILTERS: &[&str] = &["add_response", "health", "router"];

#[test]
fn callback_lists_match_the_code() {
    let mut wrong = Vec::new();
    for f in FILTERS {
        let listed = callbacks::listed(&consistency::read(&format!("filters/{f}/Cargo.toml")).unwrap()).unwrap();
        let implemented = callbacks::implemented(&consistency::read(&format!("filters/{f}/src/lib.rs")).unwrap()).unwrap();
        assert!(!implemented.is_empty(), "{f}: no callback found in its code");
        if let Err(e) = callbacks::compare(f, &listed, &implemented) {
            wrong.push(e);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_callback_missing_from_the_list_is_named() {
    let code = "impl HttpContext for X { fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action { Action::Continue } \
                fn on_http_response_body(&mut self, _: usize, _: bool) -> Action { Action::Continue } } \
                impl RootContext for R { fn on_configure(&mut self, _: usize) -> bool { true } fn get_type(&self) -> Option<ContextType> { None } }";
    let implemented = callbacks::implemented(code).unwrap();
    let listed = callbacks::listed("[package.metadata.proxy-wasm]\ncallbacks = [\"proxy_on_request_headers\"]\n").unwrap();
    let e = callbacks::compare("x", &listed, &implemented).unwrap_err();
    assert!(e.contains("proxy_on_response_body"), "{e}");
    // A method this test does not know is an error, not a pass.
    assert!(callbacks::implemented("impl HttpContext for X { fn on_http_new_thing(&mut self) {} }").is_err());
}
