//! Host calls that cannot panic.
//!
//! The proxy-wasm SDK's `hostcalls` (0.2.5) `panic!` on any status it does
//! not expect and `unwrap()` header values as UTF-8; one odd request (a
//! non-UTF-8 header, a body buffer Envoy no longer has) would then abort the
//! VM and fail every request after it. These wrappers call the same ABI
//! functions and return `Option`/`Result` instead. The SDK is still used for
//! its dispatcher (the `Context` traits), never for these calls.

#![allow(clippy::missing_safety_doc)]

use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};
use std::ptr::{null, null_mut};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: LogLevel, message_data: *const u8, message_size: usize) -> Status;
    fn proxy_get_buffer_bytes(t: BufferType, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> Status;
    fn proxy_set_buffer_bytes(t: BufferType, start: usize, size: usize, data: *const u8, len: usize) -> Status;
    fn proxy_get_header_map_pairs(t: MapType, data: *mut *mut u8, size: *mut usize) -> Status;
    fn proxy_set_header_map_pairs(t: MapType, data: *const u8, size: usize) -> Status;
    fn proxy_get_header_map_value(t: MapType, k: *const u8, kl: usize, data: *mut *mut u8, size: *mut usize) -> Status;
    fn proxy_replace_header_map_value(t: MapType, k: *const u8, kl: usize, v: *const u8, vl: usize) -> Status;
    fn proxy_remove_header_map_value(t: MapType, k: *const u8, kl: usize) -> Status;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_len: usize,
        body: *const u8,
        body_len: usize,
        headers: *const u8,
        headers_len: usize,
        grpc_status: i32,
    ) -> Status;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_len: usize,
        args: *const u8,
        args_len: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
}

/// Takes ownership of a host-allocated buffer (allocated through the SDK's
/// `proxy_on_memory_allocate`, i.e. the Rust global allocator).
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

pub fn log(level: LogLevel, message: &str) {
    unsafe {
        let _ = proxy_log(level, message.as_ptr(), message.len());
    }
}

/// Bytes `[start, start+max)` of a buffer; `None` when there is none.
pub fn get_buffer(t: BufferType, start: usize, max: usize) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_buffer_bytes(t, start, max, &mut data, &mut size) {
            Status::Ok => Some(owned(data, size)),
            _ => None,
        }
    }
}

/// Replaces `[start, start+size)` of a buffer (Envoy: start 0 and a size
/// covering the buffer replaces all of it).
pub fn set_buffer(t: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    unsafe {
        match proxy_set_buffer_bytes(t, start, size, value.as_ptr(), value.len()) {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }
}

/// All headers (or trailers) as bytes.
pub fn get_map(t: MapType) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_header_map_pairs(t, &mut data, &mut size) {
            Status::Ok => decode_map(&owned(data, size)),
            _ => None,
        }
    }
}

pub fn set_map(t: MapType, pairs: &[(&[u8], &[u8])]) -> Result<(), Status> {
    let bytes = encode_map(pairs);
    unsafe {
        match proxy_set_header_map_pairs(t, bytes.as_ptr(), bytes.len()) {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }
}

/// One header's value as bytes; `None` when absent or unavailable.
pub fn get_header(t: MapType, key: &str) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_header_map_value(t, key.as_ptr(), key.len(), &mut data, &mut size) {
            Status::Ok => Some(owned(data, size)),
            _ => None,
        }
    }
}

/// One header's value as text, when it is UTF-8.
pub fn get_header_str(t: MapType, key: &str) -> Option<String> {
    get_header(t, key).and_then(|v| String::from_utf8(v).ok())
}

pub fn set_header(t: MapType, key: &str, value: &[u8]) -> Result<(), Status> {
    unsafe {
        match proxy_replace_header_map_value(t, key.as_ptr(), key.len(), value.as_ptr(), value.len()) {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }
}

pub fn remove_header(t: MapType, key: &str) -> Result<(), Status> {
    unsafe {
        match proxy_remove_header_map_value(t, key.as_ptr(), key.len()) {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }
}

/// Answers the request from the proxy.
pub fn send_response(status: u32, headers: &[(&[u8], &[u8])], body: &[u8]) -> Result<(), Status> {
    let h = encode_map(headers);
    unsafe {
        match proxy_send_local_response(status, null(), 0, body.as_ptr(), body.len(), h.as_ptr(), h.len(), -1) {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }
}

/// Envoy's `clear_route_cache`: since Envoy 1.33 a filter that changes
/// request headers must call it for the route to be chosen again.
pub fn clear_route_cache() -> Result<(), Status> {
    let name = "clear_route_cache";
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_call_foreign_function(name.as_ptr(), name.len(), null(), 0, &mut data, &mut size) {
            Status::Ok => {
                drop(owned(data, size));
                Ok(())
            }
            s => Err(s),
        }
    }
}

/// The proxy-wasm header map wire format: count, then (key len, value len)
/// pairs, then NUL-terminated keys and values. Checked, never trusted.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize) };
    let n = word(0)?;
    let mut p = 4usize.checked_add(n.checked_mul(8)?)?;
    let mut out = Vec::with_capacity(n.min(256));
    for i in 0..n {
        let (kl, vl) = (word(4 + i * 8)?, word(8 + i * 8)?);
        let k = bytes.get(p..p.checked_add(kl)?)?.to_vec();
        p += kl + 1;
        let v = bytes.get(p..p.checked_add(vl)?)?.to_vec();
        p += vl + 1;
        out.push((k, v));
    }
    Some(out)
}

pub fn encode_map(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + pairs.iter().map(|(k, v)| k.len() + v.len() + 10).sum::<usize>());
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trips_bytes() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x", b"\xff\x00y"), (b"", b"")];
        let enc = encode_map(&pairs);
        let dec = decode_map(&enc).unwrap();
        assert_eq!(dec.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect::<Vec<_>>(), pairs);
    }

    #[test]
    fn truncated_maps_are_refused() {
        let enc = encode_map(&[(b"key", b"value")]);
        for cut in 1..enc.len() - 1 {
            assert_eq!(decode_map(&enc[..cut]), None, "cut {cut}");
        }
        assert_eq!(decode_map(&[0xff, 0xff, 0xff, 0xff]), None);
    }
}
