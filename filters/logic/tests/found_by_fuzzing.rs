//! Inputs the fuzz targets (filters/fuzz) found wrong, each kept as a plain
//! test of the behaviour it broke. Host and wasm32 (wasm-bindgen-test).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edge_logic::add::config::AddConfig;
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
