//! Each filter's `[package.metadata.proxy-wasm] callbacks` (what `./x build`
//! keeps exported, filters/trim) against the trait methods its `impl` blocks
//! really define: a callback missing from the list would be trimmed out of
//! the `.wasm` silently, and Envoy would never call it.

use std::collections::BTreeSet;

/// proxy-wasm 0.2.5 trait methods and the export the SDK's dispatcher calls
/// them from (src/dispatcher.rs); `None` for methods no export of their own
/// calls (context creation, configuration: always exported).
const METHODS: &[(&str, &str, Option<&str>)] = &[
    ("Context", "on_http_call_response", Some("proxy_on_http_call_response")),
    ("Context", "on_grpc_call_response", Some("proxy_on_grpc_close")),
    ("Context", "on_grpc_stream_initial_metadata", Some("proxy_on_grpc_receive_initial_metadata")),
    ("Context", "on_grpc_stream_message", Some("proxy_on_grpc_receive")),
    ("Context", "on_grpc_stream_trailing_metadata", Some("proxy_on_grpc_receive_trailing_metadata")),
    ("Context", "on_grpc_stream_close", Some("proxy_on_grpc_close")),
    ("Context", "on_foreign_function", Some("proxy_on_foreign_function")),
    ("Context", "on_done", Some("proxy_on_done")),
    ("RootContext", "on_vm_start", Some("proxy_on_vm_start")),
    ("RootContext", "on_configure", Some("proxy_on_configure")),
    ("RootContext", "on_tick", Some("proxy_on_tick")),
    ("RootContext", "on_queue_ready", Some("proxy_on_queue_ready")),
    ("RootContext", "on_log", Some("proxy_on_log")),
    ("RootContext", "create_http_context", None),
    ("RootContext", "create_stream_context", None),
    ("RootContext", "get_type", None),
    ("StreamContext", "on_new_connection", Some("proxy_on_new_connection")),
    ("StreamContext", "on_downstream_data", Some("proxy_on_downstream_data")),
    ("StreamContext", "on_downstream_close", Some("proxy_on_downstream_connection_close")),
    ("StreamContext", "on_upstream_data", Some("proxy_on_upstream_data")),
    ("StreamContext", "on_upstream_close", Some("proxy_on_upstream_connection_close")),
    ("StreamContext", "on_log", Some("proxy_on_log")),
    ("HttpContext", "on_http_request_headers", Some("proxy_on_request_headers")),
    ("HttpContext", "on_http_request_body", Some("proxy_on_request_body")),
    ("HttpContext", "on_http_request_trailers", Some("proxy_on_request_trailers")),
    ("HttpContext", "on_http_response_headers", Some("proxy_on_response_headers")),
    ("HttpContext", "on_http_response_body", Some("proxy_on_response_body")),
    ("HttpContext", "on_http_response_trailers", Some("proxy_on_response_trailers")),
    ("HttpContext", "on_log", Some("proxy_on_log")),
];

/// The callbacks `Cargo.toml` lists (`[package.metadata.proxy-wasm]`).
pub fn listed(cargo_toml: &str) -> Result<BTreeSet<String>, String> {
    let doc: toml::Table = cargo_toml.parse().map_err(|e| format!("{e}"))?;
    let list = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("proxy-wasm"))
        .and_then(|m| m.get("callbacks"))
        .and_then(|c| c.as_array())
        .ok_or("no [package.metadata.proxy-wasm] callbacks list")?;
    list.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("{v} is not a string"))).collect()
}

/// The optional callbacks (those filters/trim drops when unlisted) that the
/// proxy-wasm trait impls in `source` define.
pub fn implemented(source: &str) -> Result<BTreeSet<String>, String> {
    let file = syn::parse_file(source).map_err(|e| format!("{e}"))?;
    let mut out = BTreeSet::new();
    for item in &file.items {
        let syn::Item::Impl(imp) = item else { continue };
        let Some((_, path, _)) = &imp.trait_ else { continue };
        let Some(trait_name) = path.segments.last().map(|s| s.ident.to_string()) else { continue };
        if !METHODS.iter().any(|(t, _, _)| *t == trait_name) {
            continue;
        }
        for it in &imp.items {
            let syn::ImplItem::Fn(f) = it else { continue };
            let name = f.sig.ident.to_string();
            let Some((_, _, export)) = METHODS.iter().find(|(t, m, _)| *t == trait_name && *m == name) else {
                return Err(format!("{trait_name}::{name} is not a proxy-wasm 0.2.5 method this test knows: add it to METHODS"));
            };
            if let Some(e) = export.filter(|e| !edge_trim::ALWAYS.contains(e)) {
                out.insert(e.to_string());
            }
        }
    }
    Ok(out)
}

/// The difference between a filter's list and its code, as a message.
pub fn compare(filter: &str, listed: &BTreeSet<String>, implemented: &BTreeSet<String>) -> Result<(), String> {
    let missing: Vec<&String> = implemented.difference(listed).collect();
    let extra: Vec<&String> = listed.difference(implemented).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    Err(format!(
        "filters/{filter}: callbacks implemented but not listed in Cargo.toml (./x build would unexport them): {missing:?}; \
         listed but not implemented: {extra:?}"
    ))
}
