//! One add through add_response's state machine (`add::flow::AddFlow`), as
//! the filter runs it: request headers, the upload in chunks (the real
//! multipart scanner tells the rewrite the names), the cluster's response
//! headers and body in chunks. Input: header lines (`:path`, content-type,
//! content-length, the routing mark, `limit N`), an empty line, the upload,
//! `\n===\n`, the cluster's response body. Properties:
//! - an upload over `max_upload_bytes` never passes whole: refused on its
//!   Content-Length or at the chunk that crosses the limit;
//! - only the router's `proxy` mark survives a forwarded add;
//! - a forwarded `:path` is the query read as `add::query` reads it, and
//!   the upload is never asked for once it no longer matters;
//! - the answer leaves line for line as it came, but for rewritten cluster
//!   events, whatever the chunking of upload and answer.
#![no_main]

use edge_fuzz::{chunkings, memfind, Rng};
use edge_logic::add::config::AddConfig;
use edge_logic::add::event::RawEvent;
use edge_logic::add::flow::{AddFlow, OnRequestBody, OnRequestHeaders, RequestHeaders};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: edge_fuzz::init("add_flow"), |data: &[u8]| {
    let Some(blank) = memfind(data, b"\n\n") else { return };
    let (head, rest) = (&data[..blank], &data[blank + 2..]);
    let (upload, answer) = match memfind(rest, b"\n===\n") {
        Some(at) => (&rest[..at], &rest[at + 5..]),
        None => (rest, &b""[..]),
    };
    let mut req = RequestHeaders { method: Some(b"POST"), ..Default::default() };
    let mut config = AddConfig::default();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':').filter(|&c| c > 0) else { continue };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        match &line[..colon] {
            b"path" => req.path = Some(value),
            b"method" => req.method = Some(value),
            b"content-type" => req.content_type = Some(value),
            b"content-length" => req.content_length = Some(value),
            b"mark" => req.mark = Some(value),
            b"limit" => config.max_upload_bytes = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).unwrap_or(0),
            b"max-line" => config.max_line_bytes = 256 + usize::from(value.first().copied().unwrap_or(0)),
            _ => {}
        }
    }
    let limit = config.max_upload_bytes;
    let mut rng = Rng::from_input(data);
    let upload_cuts = chunkings(upload, &mut rng);
    let answer_cuts = chunkings(answer, &mut rng);
    for (n, (up, down)) in upload_cuts.iter().zip(answer_cuts.iter().cycle()).enumerate() {
        let mut flow = AddFlow::new();
        let forward = match flow.on_request_headers(&config, &req) {
            OnRequestHeaders::Pass | OnRequestHeaders::Reply(_) => return,
            OnRequestHeaders::Forward(f) => f,
        };
        assert_eq!(forward.drop_mark, req.mark != Some(b"proxy"), "{forward:?}");
        if let (Some(p), Some(raw)) = (&forward.path, req.path) {
            assert_ne!(p.as_bytes(), raw, "an unchanged path is not set again");
        }
        if limit > 0 {
            let declared = req.content_length.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<u64>().ok());
            assert!(declared.is_none_or(|d| d <= limit), "declared {declared:?} over {limit} forwarded");
        }
        let (mut sent, mut refused, mut stop_reading) = (0u64, false, false);
        for (i, c) in up.iter().enumerate() {
            let eos = i + 1 == up.len();
            let mut asked = false;
            let step = flow.on_request_body(&config, c.len(), eos, || {
                asked = true;
                c.to_vec()
            });
            assert!(!(asked && stop_reading), "the upload was read after its structure stopped mattering");
            if !asked && !c.is_empty() {
                stop_reading = true;
            }
            match step {
                OnRequestBody::Reply(r) => {
                    refused = true;
                    assert!(r.status == 413 || r.status == 500, "{r:?}");
                    break;
                }
                OnRequestBody::Continue | OnRequestBody::StructureLost => sent += c.len() as u64,
            }
        }
        if limit > 0 && !refused {
            assert!(sent <= limit, "{sent} bytes over the limit {limit} passed (chunking {n})");
        }
        if refused || !flow.rewriting() {
            continue;
        }
        let headers = vec![(":status".to_string(), "200".to_string()), ("x-chunked-output".to_string(), "1".to_string())];
        assert!(flow.on_response_headers(&config, || Some(headers)).is_some(), "a streaming answer keeps Kubo's headers");
        let mut out = Vec::new();
        for (i, c) in down.iter().enumerate() {
            let step = flow.on_response_body(c.len(), i + 1 == down.len(), || c.to_vec());
            out.extend_from_slice(step.replace.as_deref().unwrap_or(c));
        }
        let came: Vec<&[u8]> = answer.split(|&b| b == b'\n').collect();
        let left: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
        assert_eq!(came.len(), left.len(), "lines added or lost");
        for (c, l) in came.iter().zip(&left) {
            if c != l {
                assert!(RawEvent::parse(c).is_some(), "a line that is no event changed: {:?}", String::from_utf8_lossy(c));
                assert!(RawEvent::parse(l).is_some(), "a rewrite that is no event: {:?}", String::from_utf8_lossy(l));
            }
        }
    }
});
