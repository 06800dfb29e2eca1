//! The add filter's logic on hostile input: whatever a client or upstream
//! sends, no function panics (a panic aborts the Wasm VM for every request).
//! Inputs are generated (deterministic xorshift) around the shapes the code
//! looks for, so the parsers' edge paths are reached.

use edge_logic::add::checks;
use edge_logic::add::cidbase::CidBase;
use edge_logic::add::lines::LineCutter;
use edge_logic::add::multipart::{boundary, Scanner};
use edge_logic::add::query::{route, AddRequest};
use edge_logic::add::response::AddResponse;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A byte string assembled from fragments the parsers care about.
    fn text(&mut self, pieces: &[&[u8]], max: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..self.below(max) {
            if self.below(4) == 0 {
                v.push(self.next() as u8);
            } else {
                v.extend_from_slice(pieces[self.below(pieces.len())]);
            }
        }
        v
    }
}

const QUERY: &[&[u8]] = &[
    b"?", b"&", b"=", b";", b"%", b"%2", b"%zz", b"%41", b"+", b"w", b"n", b"p", b"t", b"s", b"only-hash", b"cid-base",
    b"cid-version", b"chunker", b"hash", b"size-", b"rabin-", b"1", b"0", b"true", b"x", b"base32", b"0x", b"-",
    b"stream-channels", b"upgrade-cidv0-in-output", b"mode", b"\xff", b"\xe2\x80\xa8",
];
const EVENT: &[&[u8]] = &[
    b"{", b"}", b"\"", b"\\", b"\\u", b"\\u003c", b":", b",", b"Name", b"Hash", b"Bytes", b"Size", b"\"Name\":\"", b"\"Hash\":\"",
    b"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", b"bafy", b"0", b"12", b"\n", b"\xff", b"/", b"-1",
];
const PARTS: &[&[u8]] = &[
    b"--b", b"\r\n", b"\n", b"--", b" ", b"Content-Disposition: form-data; filename=\"", b"\"", b"\\", b"%2F", b"/", b"..",
    b"Content-Type: application/x-directory", b"\r\n\r\n", b":", b";", b"=", b"x",
];

#[test]
fn no_input_makes_the_add_logic_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let q = rng.text(QUERY, 24);
        let path = format!("/api/v0/add{}", String::from_utf8_lossy(&q));
        let ct = if round % 3 == 0 { "multipart/form-data; boundary=b".to_string() } else { String::from_utf8_lossy(&rng.text(PARTS, 6)).into_owned() };
        let _ = route(&path, &ct, round % 2 == 0);
        let _ = boundary(&ct);
        let _ = checks::chunker(&String::from_utf8_lossy(&rng.text(QUERY, 8)));
        let _ = CidBase::by_name(&String::from_utf8_lossy(&rng.text(QUERY, 3)));
        let _ = CidBase::default().encode(&String::from_utf8_lossy(&rng.text(EVENT, 4)));

        // The upload's structure, cut anywhere.
        let body = rng.text(PARTS, 60);
        let mut response = AddResponse::new(&AddRequest { wrap: round % 5 == 0, ..Default::default() });
        let mut scanner = Scanner::new("b");
        let mut at = 0;
        while at < body.len() {
            let n = 1 + rng.below(body.len() - at);
            scanner.feed(&body[at..at + n], |p| response.on_part(p));
            at += n;
        }

        // The response, in random chunks, as Envoy would hand it over.
        let stream = rng.text(EVENT, 80);
        let mut cutter = LineCutter::new(64 + rng.below(64));
        let mut at = 0;
        while at < stream.len() {
            let n = 1 + rng.below(stream.len() - at);
            let _ = cutter.step(&stream[at..at + n], at + n == stream.len(), &mut response);
            at += n;
        }
        let _ = cutter.take_carry();
    }
}
