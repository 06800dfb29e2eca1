//! The few proxy-wasm host calls the filters make, declared here with `u32`
//! statuses and wrapped so that every failure is a `Result`. The SDK's
//! `hostcalls` panic on any status they do not expect, and a panic kills the
//! VM, failing the request in flight and the ones after it: these wrappers
//! cannot panic.
//!
//! Shared by the health filter through `#[path]`; both crates are thin
//! wrappers, a third crate for 150 lines would only add a build step.

#![allow(dead_code)]

use edge_logic::router::wire;

pub const MAP_REQUEST_HEADERS: u32 = 0;
pub const MAP_HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
pub const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;

pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_call_foreign_function(
        name_data: *const u8,
        name_size: usize,
        args_data: *const u8,
        args_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
}

// On the host (cargo check/clippy of the whole workspace) there is no proxy:
// every call fails, which the callers already handle.
#[cfg(not(target_arch = "wasm32"))]
mod host_stubs {
    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 { 2 }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 { 2 }
    pub unsafe fn proxy_get_header_map_value(_: u32, _: *const u8, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 { 2 }
    pub unsafe fn proxy_replace_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 { 2 }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 { 2 }
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn proxy_send_local_response(_: u32, _: *const u8, _: usize, _: *const u8, _: usize, _: *const u8, _: usize, _: i32) -> u32 { 2 }
    pub unsafe fn proxy_call_foreign_function(_: *const u8, _: usize, _: *const u8, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 { 2 }
    pub unsafe fn proxy_get_buffer_bytes(_: u32, _: usize, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 { 2 }
    pub unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 { 2 }
}
#[cfg(not(target_arch = "wasm32"))]
use host_stubs::*;

/// A host status other than Ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

fn status(s: u32) -> Result<(), HostError> {
    if s == OK {
        Ok(())
    } else {
        Err(HostError(s))
    }
}

/// Takes ownership of a buffer the host allocated through the SDK's
/// `proxy_on_memory_allocate` (a `Vec<u8>` of exactly `size`).
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    Vec::from_raw_parts(data, size, size)
}

pub fn log(level: u32, msg: &str) {
    // Nothing useful can be done if logging fails.
    unsafe {
        let _ = proxy_log(level, msg.as_ptr(), msg.len());
    }
}

pub fn header_pairs(map: u32) -> Result<Vec<(String, Vec<u8>)>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let bytes = unsafe {
        status(proxy_get_header_map_pairs(map, &mut data, &mut size))?;
        take(data, size)
    };
    wire::decode_map(&bytes).ok_or(HostError(u32::MAX))
}

/// One header's value; `Ok(None)` when absent.
pub fn header(map: u32, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    unsafe {
        match proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) {
            OK => Ok(Some(take(data, size))),
            NOT_FOUND => Ok(None),
            s => Err(HostError(s)),
        }
    }
}

pub fn replace_header(map: u32, name: &str, value: &str) -> Result<(), HostError> {
    unsafe {
        status(proxy_replace_header_map_value(
            map,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ))
    }
}

pub fn remove_header(map: u32, name: &str) -> Result<(), HostError> {
    unsafe {
        match proxy_remove_header_map_value(map, name.as_ptr(), name.len()) {
            OK | NOT_FOUND => Ok(()),
            s => Err(HostError(s)),
        }
    }
}

pub fn send_local_response(status_code: u16, headers: &[(&str, &[u8])], body: Option<&[u8]>) -> Result<(), HostError> {
    let h = wire::encode_map(headers);
    let (bp, bl) = match body {
        Some(b) => (b.as_ptr(), b.len()),
        None => (std::ptr::null(), 0),
    };
    unsafe {
        status(proxy_send_local_response(
            status_code as u32,
            std::ptr::null(),
            0,
            bp,
            bl,
            h.as_ptr(),
            h.len(),
            -1,
        ))
    }
}

pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<(), HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    unsafe {
        let s = proxy_call_foreign_function(name.as_ptr(), name.len(), args.as_ptr(), args.len(), &mut data, &mut size);
        drop(take(data, size));
        status(s)
    }
}

pub fn plugin_configuration(size: usize) -> Result<Vec<u8>, HostError> {
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut out: usize = 0;
    unsafe {
        match proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &mut data, &mut out) {
            OK => Ok(take(data, out)),
            NOT_FOUND => Ok(Vec::new()),
            s => Err(HostError(s)),
        }
    }
}

pub fn set_tick_period_ms(ms: u32) -> Result<(), HostError> {
    unsafe { status(proxy_set_tick_period_milliseconds(ms)) }
}
