//! Host calls that cannot panic: the one wrapper over the proxy-wasm ABI
//! that every edge filter (add_response, health, router) goes through.
//!
//! The proxy-wasm SDK's `hostcalls` (0.2.5) `panic!` on any status they do
//! not expect, `unwrap()` header values as UTF-8, and declare the host's
//! return values as a Rust enum that lacks some of the statuses Envoy can
//! return (an unlisted value would be undefined behaviour, not even a
//! panic). One odd request (a non-UTF-8 header, a body buffer Envoy no
//! longer has) would then abort the VM and fail every request after it.
//! These wrappers call the same ABI functions with plain `u32` statuses and
//! return `Option`/`Result` instead. The SDK is still used for its
//! dispatcher (the `Context` traits), and for one call that must register
//! with it ([`dispatch_http_call`]).
//!
//! The pure parts (header-map codec, status names, timeouts, call headers)
//! are plain functions tested on the host.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![allow(clippy::missing_safety_doc)]

pub mod metrics;

use proxy_wasm::types::{BufferType, LogLevel, MapType};
use std::ptr::{null, null_mut};
use std::time::Duration;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_buffer_bytes(t: u32, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_buffer_bytes(t: u32, start: usize, size: usize, data: *const u8, len: usize) -> u32;
    fn proxy_get_header_map_pairs(t: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_header_map_pairs(t: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_header_map_value(t: u32, k: *const u8, kl: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(t: u32, k: *const u8, kl: usize, v: *const u8, vl: usize) -> u32;
    fn proxy_remove_header_map_value(t: u32, k: *const u8, kl: usize) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_len: usize,
        body: *const u8,
        body_len: usize,
        headers: *const u8,
        headers_len: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_len: usize,
        args: *const u8,
        args_len: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
}

/// Statuses of the proxy-wasm ABI (`WasmResult` in Envoy), by number.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const EMPTY: u32 = 7;

/// A host status other than Ok, kept as the number the host returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

impl HostError {
    /// The ABI's name for the status (for logs).
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "Ok",
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            5 => "BadExpression",
            6 => "InvalidMemoryAccess",
            7 => "Empty",
            8 => "CasMismatch",
            9 => "ResultMismatch",
            10 => "InternalFailure",
            11 => "BrokenConnection",
            12 => "Unimplemented",
            _ => "unknown status",
        }
    }
}

impl std::fmt::Debug for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

fn status(s: u32) -> Result<(), HostError> {
    if s == OK {
        Ok(())
    } else {
        Err(HostError(s))
    }
}

/// Takes ownership of a host-allocated buffer (allocated through the SDK's
/// `proxy_on_memory_allocate`, i.e. the Rust global allocator, as a
/// `Vec<u8>` of exactly `size`).
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

pub fn log(level: LogLevel, message: &str) {
    // Nothing useful can be done if logging fails.
    unsafe {
        let _ = proxy_log(level as u32, message.as_ptr(), message.len());
    }
}

/// Bytes `[start, start+max)` of a buffer; `None` when there is none.
pub fn get_buffer(t: BufferType, start: usize, max: usize) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_buffer_bytes(t as u32, start, max, &mut data, &mut size) {
            OK => Some(owned(data, size)),
            _ => None,
        }
    }
}

/// The plugin configuration; empty when there is none (Envoy answers
/// NotFound or Empty for an empty `configuration`).
pub fn plugin_configuration() -> Result<Vec<u8>, HostError> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_buffer_bytes(BufferType::PluginConfiguration as u32, 0, usize::MAX, &mut data, &mut size) {
            OK => Ok(owned(data, size)),
            NOT_FOUND | EMPTY => Ok(Vec::new()),
            s => Err(HostError(s)),
        }
    }
}

/// The plugin configuration as `on_configure` wants it: `None` once the
/// reason it cannot be read is logged (the filter then refuses the
/// configuration, and Envoy keeps the one it had).
pub fn configuration() -> Option<Vec<u8>> {
    plugin_configuration()
        .map_err(|e| log(LogLevel::Error, &format!("cannot read plugin configuration: host status {e}")))
        .ok()
}

/// Replaces `[start, start+size)` of a buffer (Envoy: start 0 and a size
/// covering the buffer replaces all of it).
pub fn set_buffer(t: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), HostError> {
    unsafe { status(proxy_set_buffer_bytes(t as u32, start, size, value.as_ptr(), value.len())) }
}

/// All headers (or trailers) in one host call; `None` on a host failure or
/// a map that does not decode. One call instead of one per header: every
/// value the host returns costs a call back into the VM to allocate it.
pub fn get_map(t: MapType) -> Option<HeaderMap> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_header_map_pairs(t as u32, &mut data, &mut size) {
            OK => HeaderMap::decode(owned(data, size)),
            _ => None,
        }
    }
}

pub fn set_map(t: MapType, pairs: &[(&[u8], &[u8])]) -> Result<(), HostError> {
    let bytes = encode_map(pairs);
    unsafe { status(proxy_set_header_map_pairs(t as u32, bytes.as_ptr(), bytes.len())) }
}

/// One header's value as bytes; `Ok(None)` when absent, `Err` when the
/// host failed (so a policy can fail closed instead of reading "absent").
pub fn header(t: MapType, key: &str) -> Result<Option<Vec<u8>>, HostError> {
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        match proxy_get_header_map_value(t as u32, key.as_ptr(), key.len(), &mut data, &mut size) {
            OK => Ok(Some(owned(data, size))),
            NOT_FOUND => Ok(None),
            s => Err(HostError(s)),
        }
    }
}

/// One header's value as bytes; `None` when absent or unavailable.
pub fn get_header(t: MapType, key: &str) -> Option<Vec<u8>> {
    header(t, key).ok().flatten()
}

pub fn set_header(t: MapType, key: &str, value: &[u8]) -> Result<(), HostError> {
    unsafe { status(proxy_replace_header_map_value(t as u32, key.as_ptr(), key.len(), value.as_ptr(), value.len())) }
}

/// Removes a header; removing an absent one is not an error.
pub fn remove_header(t: MapType, key: &str) -> Result<(), HostError> {
    unsafe {
        match proxy_remove_header_map_value(t as u32, key.as_ptr(), key.len()) {
            OK | NOT_FOUND => Ok(()),
            s => Err(HostError(s)),
        }
    }
}

/// Answers the request from the proxy.
pub fn send_response(status_code: u32, headers: &[(&[u8], &[u8])], body: &[u8]) -> Result<(), HostError> {
    let h = encode_map(headers);
    unsafe {
        status(proxy_send_local_response(status_code, null(), 0, body.as_ptr(), body.len(), h.as_ptr(), h.len(), -1))
    }
}

/// Envoy's `clear_route_cache`: since Envoy 1.33 a filter that changes
/// request headers must call it for the route to be chosen again.
pub fn clear_route_cache() -> Result<(), HostError> {
    let name = "clear_route_cache";
    let (mut data, mut size) = (null_mut(), 0);
    unsafe {
        let s = proxy_call_foreign_function(name.as_ptr(), name.len(), null(), 0, &mut data, &mut size);
        drop(owned(data, size));
        status(s)
    }
}

/// Calls the root context's `on_tick` every `period` (0 stops the timer).
pub fn set_tick_period(period: Duration) -> Result<(), HostError> {
    unsafe { status(proxy_set_tick_period_milliseconds(millis(period))) }
}

/// An HTTP call to an Envoy cluster; the answer comes to the calling
/// context's `on_http_call_response` with the returned token.
///
/// This one goes through the SDK, which must register the token with its
/// dispatcher (an unregistered token makes the dispatcher panic when the
/// answer arrives). The SDK panics only on a status other than Ok,
/// BadArgument or InternalFailure; Envoy's `http_call` returns another one
/// (InvalidMemoryAccess) only for pointers outside the VM's memory, which
/// slices never are. The headers Envoy would refuse are refused here first,
/// as BadArgument.
pub fn dispatch_http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, HostError> {
    check_call(cluster, headers)?;
    let timeout = Duration::from_millis(u64::from(millis(timeout).max(1)));
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, vec![], timeout)
        .map_err(|s| HostError(s as u32))
}

/// What Envoy requires of an HTTP call (`Context::httpCall`): a cluster
/// name, `:method`, `:path` and `:authority`; NUL bytes would cut the
/// serialized map.
pub fn check_call(cluster: &str, headers: &[(&str, &str)]) -> Result<(), HostError> {
    let has = |name: &str| headers.iter().any(|(k, v)| *k == name && !v.is_empty());
    let nul = headers.iter().any(|(k, v)| k.contains('\0') || v.contains('\0'));
    if cluster.is_empty() || nul || !has(":method") || !has(":path") || !has(":authority") {
        return Err(HostError(BAD_ARGUMENT));
    }
    Ok(())
}

/// Whole milliseconds for the ABI's `u32` timeouts and periods, saturating
/// instead of wrapping (the SDK's `as u32` would turn 50 days into ~0).
pub fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// A header map as the host sent it, read in place: one buffer and the
/// spans of each key and value in it, so reading a map costs two
/// allocations however many headers it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    /// (key start, key end, value start, value end) per pair.
    spans: Vec<[usize; 4]>,
}

impl HeaderMap {
    /// Parses the proxy-wasm header map wire format: `u32` count, then
    /// (key len, value len) pairs, then each key and value followed by a NUL
    /// byte (all little-endian). Checked, never trusted: `None` for anything
    /// malformed.
    pub fn decode(bytes: Vec<u8>) -> Option<HeaderMap> {
        if bytes.is_empty() {
            return Some(HeaderMap { bytes, spans: Vec::new() });
        }
        let word = |at: usize| -> Option<usize> {
            Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
        };
        let n = word(0)?;
        let mut p = n.checked_mul(8)?.checked_add(4)?;
        if p > bytes.len() {
            return None;
        }
        let mut spans = Vec::with_capacity(n);
        for i in 0..n {
            let (kl, vl) = (word(4 + i * 8)?, word(8 + i * 8)?);
            let k = p;
            p = p.checked_add(kl)?;
            if bytes.get(p) != Some(&0) {
                return None;
            }
            let v = p + 1;
            p = v.checked_add(vl)?;
            if bytes.get(p) != Some(&0) {
                return None;
            }
            spans.push([k, k + kl, v, p]);
            p += 1;
        }
        Some(HeaderMap { bytes, spans })
    }

    /// Every (name, value) pair, in the host's order.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|[k, ke, v, ve]| (&self.bytes[*k..*ke], &self.bytes[*v..*ve]))
    }

    /// The first value of `name` (Envoy hands filters lower-case names).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
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
        let dec = HeaderMap::decode(encode_map(&pairs)).unwrap();
        assert_eq!(dec.pairs().collect::<Vec<_>>(), pairs);
        assert_eq!(dec.get("x"), Some(&b"\xff\x00y"[..]));
        assert_eq!(dec.get("y"), None);
        assert!(HeaderMap::decode(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn truncated_or_garbled_maps_are_refused() {
        let enc = encode_map(&[(b"key", b"value"), (b"k2", b"v2")]);
        for cut in 1..enc.len() {
            assert_eq!(HeaderMap::decode(enc[..cut].to_vec()), None, "cut {cut}");
        }
        assert_eq!(HeaderMap::decode(vec![0xff, 0xff, 0xff, 0xff]), None);
        // A missing NUL terminator means the lengths lie.
        let mut bad = enc.clone();
        let first_nul = 4 + 2 * 8 + 3;
        bad[first_nul] = b'x';
        assert_eq!(HeaderMap::decode(bad), None);
        // A count that would overflow the size computation.
        assert_eq!(HeaderMap::decode(u32::MAX.to_le_bytes().to_vec()), None);
    }

    #[test]
    fn statuses_are_named_and_unknown_ones_kept() {
        assert_eq!(format!("{:?}", HostError(2)), "BadArgument (2)");
        assert_eq!(format!("{}", HostError(12)), "Unimplemented (12)");
        assert_eq!(HostError(99).name(), "unknown status");
        assert_eq!(status(0), Ok(()));
        assert_eq!(status(6), Err(HostError(6)));
    }

    #[test]
    fn milliseconds_saturate() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_micros(999)), 0);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn http_calls_need_what_envoy_needs() {
        let good = [(":method", "GET"), (":path", "/health"), (":authority", "cluster_rest")];
        assert_eq!(check_call("cluster_rest", &good), Ok(()));
        assert_eq!(check_call("", &good), Err(HostError(BAD_ARGUMENT)));
        for drop in 0..good.len() {
            let mut h = good.to_vec();
            h.remove(drop);
            assert_eq!(check_call("c", &h), Err(HostError(BAD_ARGUMENT)), "without {}", good[drop].0);
        }
        let mut nul = good.to_vec();
        nul.push(("x", "a\0b"));
        assert_eq!(check_call("c", &nul), Err(HostError(BAD_ARGUMENT)));
        let mut empty = good.to_vec();
        empty[1] = (":path", "");
        assert_eq!(check_call("c", &empty), Err(HostError(BAD_ARGUMENT)));
    }
}
