//! The cluster's add events and their rewrite (`add::event`, `add::response`,
//! `add::lines`), on a response body cut into chunks in several ways.
//! Properties:
//! - a line the filter does not understand (not exactly a cluster event) is
//!   rewritten into itself: `rewrite_line` says "unchanged" and writes
//!   nothing;
//! - the bytes that leave equal the bytes that came, but for rewritten lines:
//!   line for line, each line that leaves is the one that came or the
//!   rewrite of an event; a cut line carried over is never lost (the carry
//!   handed back at trailers counts as sent);
//! - when no line is longer than `max_line`, the output is exactly the
//!   line-by-line rewrite of the whole body, whatever the chunking;
//! - a rewritten line is itself an event in Kubo's field order, valid JSON
//!   when the cluster's line was, with the cluster's `Bytes` and (without
//!   `cid-base`) its `Hash`.
#![no_main]

use edge_fuzz::{chunkings, LinesInput, Rng, CID_BASES};
use edge_logic::add::cidbase::CidBase;
use edge_logic::add::event::RawEvent;
use edge_logic::add::lines::LineCutter;
use edge_logic::add::multipart::Part;
use edge_logic::add::query::AddRequest;
use edge_logic::add::response::AddResponse;
use libfuzzer_sys::fuzz_target;

fn response(input: &LinesInput<'_>) -> AddResponse {
    let request = AddRequest {
        wrap: input.wrap,
        progress: input.progress,
        cid_base: input.cid_base.and_then(|i| CidBase::by_name(CID_BASES[i]).ok()),
    };
    let mut r = AddResponse::new(&request);
    for (is_dir, path) in &input.parts {
        r.on_part(Part { path: path.to_vec(), is_dir: *is_dir, malformed: None });
    }
    r
}

/// What leaves for `chunks`, as Envoy would send it.
fn run(input: &LinesInput<'_>, chunks: &[&[u8]]) -> Vec<u8> {
    let mut r = response(input);
    let mut cutter = LineCutter::new(input.max_line);
    let mut sent = Vec::new();
    let n = chunks.len();
    for (i, c) in chunks.iter().enumerate() {
        let eos = i + 1 == n && !input.trailers;
        let step = cutter.step(c, eos, &mut r);
        sent.extend_from_slice(step.replace.as_deref().unwrap_or(c));
    }
    if input.trailers {
        sent.extend_from_slice(&cutter.take_carry());
    } else {
        assert!(cutter.take_carry().is_empty(), "bytes kept after the end of the stream");
    }
    sent
}

fn check_rewrite(cluster: &[u8], kubo: &[u8], cid_base: bool) {
    let kubo = kubo.strip_suffix(b"\n").expect("a rewritten line ends in a newline");
    assert!(!kubo.contains(&b'\n'), "one line in, one line out");
    let (c, k) = (RawEvent::parse(cluster).expect("only events are rewritten"), RawEvent::parse(kubo).expect("a rewrite is an event"));
    assert_eq!(c.bytes.filter(|b| *b != b"0"), k.bytes, "Bytes kept");
    if !cid_base {
        assert_eq!(c.hash, k.hash, "Hash kept");
    }
    if c.hash.is_some() {
        assert!(k.size.is_some(), "Kubo writes Size on final events");
    }
    if serde_json::from_slice::<serde_json::Value>(cluster).is_ok() {
        serde_json::from_slice::<serde_json::Value>(kubo).expect("valid JSON in, valid JSON out");
    }
}

fuzz_target!(init: edge_fuzz::init("add_lines"), |data: &[u8]| {
    let Some(input) = LinesInput::decode(data) else { return };
    let stream = input.stream;

    // Line by line on the whole body: the reference.
    let mut reference = response(&input);
    let mut expected = Vec::new();
    let mut long = false;
    let mut rest = stream;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..nl];
        long |= line.len() > input.max_line;
        let mut out = Vec::new();
        // A fresh rewriter in the same state: what it says about a line it
        // does not understand does not depend on what came before.
        if RawEvent::parse(line).is_none() {
            assert!(!response(&input).rewrite_line(line, &mut out) && out.is_empty(), "a foreign line changed");
        }
        if reference.rewrite_line(line, &mut out) {
            check_rewrite(line, &out, input.cid_base.is_some());
            expected.extend_from_slice(&out);
        } else {
            assert!(out.is_empty(), "an unchanged line wrote output");
            expected.extend_from_slice(line);
            expected.push(b'\n');
        }
        rest = &rest[nl + 1..];
    }
    expected.extend_from_slice(rest);

    let mut rng = Rng::from_input(data);
    for chunks in chunkings(stream, &mut rng) {
        let sent = run(&input, &chunks);
        let cuts: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        if !long {
            assert_eq!(String::from_utf8_lossy(&sent), String::from_utf8_lossy(&expected), "cuts {cuts:?}");
            continue;
        }
        // A long line may pass unchanged, and the answer's later names then
        // depend on it: only line for line.
        let came: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        let left: Vec<&[u8]> = sent.split(|&b| b == b'\n').collect();
        assert_eq!(came.len(), left.len(), "lines added or lost, cuts {cuts:?}");
        for (c, l) in came.iter().zip(&left) {
            if c != l {
                let mut k = l.to_vec();
                k.push(b'\n');
                check_rewrite(c, &k, input.cid_base.is_some());
            }
        }
    }
});
