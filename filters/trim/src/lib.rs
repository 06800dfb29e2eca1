//! Unexports the Proxy-Wasm callbacks a filter does not implement: see the
//! `edge-trim` binary for why. A library too, so the benchmarks can build
//! a filter that keeps nothing but the SDK's bookkeeping (the floor any
//! Proxy-Wasm filter pays).

use std::collections::BTreeSet;

use wasm_encoder::{ExportKind, ExportSection, Module, RawSection};
use wasmparser::{ExternalKind, Parser, Payload};

/// Exports the host needs whatever the filter does: memory for host-written
/// values, context bookkeeping (the SDK frees its per-stream context in
/// `proxy_on_delete`), start-up and configuration.
pub const ALWAYS: &[&str] = &[
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_vm_start",
    "proxy_on_configure",
];

/// A module without some of its exports.
#[derive(Debug)]
pub struct Trimmed {
    pub wasm: Vec<u8>,
    /// The names no longer exported.
    pub dropped: Vec<String>,
}

/// The module without the optional `proxy_on_*` exports missing from `keep`;
/// `None` when there is nothing to drop.
pub fn trim(wasm: &[u8], keep: &BTreeSet<String>) -> Result<Option<Trimmed>, String> {
    let optional = |name: &str| name.starts_with("proxy_on_") && !ALWAYS.contains(&name);
    if let Some(k) = keep.iter().find(|k| !optional(k)) {
        return Err(format!("{k:?} is not an optional Proxy-Wasm callback (always kept: {ALWAYS:?})"));
    }
    // One pass: every section is copied as it is but the export section,
    // which is written again without the dropped names.
    let (mut module, mut exported, mut dropped) = (Module::new(), BTreeSet::new(), Vec::new());
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        if let Payload::ExportSection(reader) = payload {
            let mut section = ExportSection::new();
            for e in reader {
                let e = e.map_err(|e| e.to_string())?;
                exported.insert(e.name);
                if optional(e.name) && !keep.contains(e.name) {
                    dropped.push(e.name.to_string());
                } else {
                    section.export(e.name, export_kind(e.kind)?, e.index);
                }
            }
            module.section(&section);
        } else if let Some((id, range)) = payload.as_section() {
            module.section(&RawSection { id, data: &wasm[range] });
        }
    }
    if let Some(k) = keep.iter().find(|k| !exported.contains(k.as_str())) {
        return Err(format!("{k:?} is listed as implemented but the module does not export it"));
    }
    if dropped.is_empty() {
        return Ok(None);
    }
    let out = module.finish();
    wasmparser::validate(&out).map_err(|e| format!("trimmed module does not validate: {e}"))?;
    Ok(Some(Trimmed { wasm: out, dropped }))
}

fn export_kind(k: ExternalKind) -> Result<ExportKind, String> {
    Ok(match k {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{CodeSection, Function, FunctionSection, Instruction, TypeSection, ValType};

    /// A module exporting one `() -> i32` function under each name.
    fn module(names: &[&str]) -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        let mut funcs = FunctionSection::new();
        let mut code = CodeSection::new();
        let mut exports = ExportSection::new();
        for (i, name) in names.iter().enumerate() {
            funcs.function(0);
            let mut f = Function::new([]);
            f.instruction(&Instruction::I32Const(i as i32));
            f.instruction(&Instruction::End);
            code.function(&f);
            exports.export(name, ExportKind::Func, i as u32);
        }
        let mut m = Module::new();
        m.section(&types).section(&funcs).section(&exports).section(&code);
        m.finish()
    }

    fn exports(wasm: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for p in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(r) = p.unwrap() {
                out.extend(r.into_iter().map(|e| e.unwrap().name.to_string()));
            }
        }
        out
    }

    fn keep(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const SDK: &[&str] = &[
        "_initialize",
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "proxy_on_context_create",
        "proxy_on_delete",
        "proxy_on_configure",
        "proxy_on_vm_start",
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_log",
        "proxy_on_done",
    ];

    #[test]
    fn unimplemented_callbacks_go_and_everything_else_stays() {
        let wasm = module(SDK);
        let Trimmed { wasm: out, dropped } = trim(&wasm, &keep(&["proxy_on_request_headers"])).unwrap().unwrap();
        assert_eq!(dropped, ["proxy_on_response_headers", "proxy_on_log", "proxy_on_done"]);
        let left = exports(&out);
        assert_eq!(left.len(), SDK.len() - 3);
        for name in ["_initialize", "proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_delete", "proxy_on_request_headers"] {
            assert!(left.iter().any(|n| n == name), "{name} kept");
        }
        // Function bodies are untouched: only the export section changed.
        assert_eq!(wasm.len() - out.len(), dropped.iter().map(|n| n.len() + 3).sum::<usize>());
    }

    #[test]
    fn a_trimmed_module_is_left_alone() {
        let out = trim(&module(SDK), &keep(&["proxy_on_request_headers"])).unwrap().unwrap().wasm;
        assert!(trim(&out, &keep(&["proxy_on_request_headers"])).unwrap().is_none());
    }

    #[test]
    fn keeping_nothing_leaves_the_sdk_bookkeeping() {
        let out = trim(&module(SDK), &BTreeSet::new()).unwrap().unwrap().wasm;
        let left = exports(&out);
        for name in ALWAYS {
            assert!(left.iter().any(|n| n == name), "{name} kept");
        }
        assert!(!left.iter().any(|n| n == "proxy_on_request_headers"));
    }

    #[test]
    fn a_wrong_list_is_an_error_not_a_silent_drop() {
        let wasm = module(SDK);
        let e = trim(&wasm, &keep(&["proxy_on_request_header"])).unwrap_err();
        assert!(e.contains("does not export it"), "{e}");
        let e = trim(&wasm, &keep(&["proxy_on_delete"])).unwrap_err();
        assert!(e.contains("not an optional"), "{e}");
        assert!(trim(b"not wasm", &BTreeSet::new()).is_err());
    }
}
