//! The upload's multipart structure (`add::multipart`): a Content-Type line,
//! then the body. Properties: the parts found (names, directory flags,
//! malformed-header errors) and whether the structure was lost do not depend
//! on where the body is cut into chunks; every name is clean and relative
//! (`path.Clean("/" + name)` without the slash: no empty, `.` or `..`
//! segment).
#![no_main]

use edge_fuzz::{chunkings, Rng};
use edge_logic::add::multipart::{boundary, Part, Scanner};
use libfuzzer_sys::fuzz_target;

/// Scanner's limit on one header block: a block longer than this is lost
/// when it arrives in pieces but read when it arrives whole, by design.
const MAX_HEADER_BLOCK: usize = 16 * 1024;

fn scan(b: &str, chunks: &[&[u8]]) -> (Vec<Part>, bool) {
    let mut s = Scanner::new(b);
    let mut parts = Vec::new();
    for c in chunks {
        s.feed(c, |p| parts.push(p));
    }
    (parts, s.lost())
}

fuzz_target!(init: edge_fuzz::init("multipart"), |data: &[u8]| {
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let b = boundary(&String::from_utf8_lossy(ct)).unwrap_or_else(|| "b".into());
    let mut rng = Rng::from_input(data);
    let all = chunkings(body, &mut rng);
    let whole = scan(&b, &all[0]);
    for p in &whole.0 {
        assert!(!p.path.starts_with(b"/"), "{p:?}");
        for seg in p.path.split(|&c| c == b'/') {
            assert!(p.path.is_empty() || !matches!(seg, b"" | b"." | b".."), "unclean name {p:?}");
        }
    }
    if body.len() > MAX_HEADER_BLOCK {
        return;
    }
    for chunks in &all[1..] {
        let cut = scan(&b, chunks);
        assert_eq!(whole, cut, "boundary {b:?}, chunks {:?}", chunks.iter().map(|c| c.len()).collect::<Vec<_>>());
    }
});
