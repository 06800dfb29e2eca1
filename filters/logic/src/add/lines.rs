//! Cutting a streamed response body into lines without holding it.
//!
//! Envoy gives a filter each body chunk. Complete lines are rewritten and
//! sent at once. The incomplete last line of a chunk (a TCP segment
//! boundary: the cluster writes whole events) is taken out and carried into
//! the next chunk by the filter, when it could be an add event (it starts
//! like one); anything else passes at once, unchanged to its end.
//!
//! Why not let Envoy hold the cut line (return `Pause`): Envoy then adds
//! the next read to what it holds, and when that passes the connection's
//! buffer limit (32 KiB under Envoy Gateway) it resets the response. That
//! happens under load (seen with 100,000-event adds), so the filter keeps
//! the at most `max_line` bytes itself. The price: an upstream that breaks
//! off inside an event and then sends trailers loses that broken event's
//! bytes, because a filter cannot add body data from the trailers callback
//! (../shared/reference/proxy-wasm-notes.md); the filter logs it. Go's
//! encoder, which the cluster uses, always ends an event with its newline.
//! A line longer than `max_line` is let through unchanged.

/// The per-line work.
pub trait Rewriter {
    /// Turns one complete line (without `\n`) into output bytes appended
    /// to `out` (including `\n`) and returns true, or returns false, writing
    /// nothing, when the line stays as it is.
    fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool;
}

/// How every line the cluster writes for an add begins.
const EVENT_START: &[u8] = b"{\"Name\":";

/// What to do with the body chunk in one callback.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// The new content of the chunk, if it changed.
    pub replace: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct LineCutter {
    max_line: usize,
    /// The incomplete last line of a large chunk, taken out of it and put
    /// in front of the next one.
    carry: Vec<u8>,
    /// Inside a line that passes as it is: longer than `max_line`, or not an
    /// add event.
    passing_line: bool,
    /// How many lines over the cap went by (for the log).
    pub long_lines: u64,
}

impl LineCutter {
    pub fn new(max_line: usize) -> LineCutter {
        LineCutter { max_line, carry: Vec::new(), passing_line: false, long_lines: 0 }
    }

    /// The bytes carried for a next chunk that did not come: the stream
    /// ended in trailers, which only an upstream that breaks off inside an
    /// event (after a large chunk) can cause.
    pub fn take_carry(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.carry)
    }

    /// `chunk` is the body chunk of one callback. The new chunk is built only
    /// when it differs, from the untouched runs of the old one.
    pub fn step(&mut self, chunk: &[u8], end_of_stream: bool, rw: &mut impl Rewriter) -> Step {
        // The new chunk, once it differs; chunk bytes before `copied_to` are
        // in it (or replaced by what is).
        let mut out: Option<Vec<u8>> = None;
        let mut copied_to = 0;
        let mut pos = 0;

        if !self.carry.is_empty() {
            // The line the previous chunk ended in goes first.
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                if end_of_stream || self.carry.len() + chunk.len() > self.max_line {
                    if !end_of_stream {
                        self.passing_line = true;
                        self.long_lines += 1;
                    }
                    let mut v = std::mem::take(&mut self.carry);
                    v.extend_from_slice(chunk);
                    return Step { replace: Some(v) };
                }
                self.carry.extend_from_slice(chunk);
                return Step { replace: Some(Vec::new()) };
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&chunk[..nl]);
            let mut o = Vec::with_capacity(chunk.len() + line.len() + 64);
            if !rw.rewrite(&line, &mut o) {
                o.extend_from_slice(&line);
                o.push(b'\n');
            }
            out = Some(o);
            pos = nl + 1;
            copied_to = pos;
        } else if self.passing_line {
            match memchr::memchr(b'\n', chunk) {
                Some(nl) => {
                    pos = nl + 1;
                    self.passing_line = false;
                }
                None => return Step { replace: None },
            }
        }

        let mut rewritten = Vec::new();
        while let Some(nl) = memchr::memchr(b'\n', &chunk[pos..]) {
            let end = pos + nl + 1;
            rewritten.clear();
            if rw.rewrite(&chunk[pos..end - 1], &mut rewritten) && rewritten[..] != chunk[pos..end] {
                let o = out.get_or_insert_with(|| Vec::with_capacity(chunk.len() + 64));
                o.extend_from_slice(&chunk[copied_to..pos]);
                o.extend_from_slice(&rewritten);
                copied_to = end;
            }
            pos = end;
        }

        let tail = &chunk[pos..];
        let carry = if end_of_stream || tail.is_empty() {
            false
        } else if tail.len() > self.max_line {
            self.passing_line = true;
            self.long_lines += 1;
            false
        } else if !(tail.starts_with(EVENT_START) || EVENT_START.starts_with(tail)) {
            self.passing_line = true;
            false
        } else {
            true
        };
        if carry {
            self.carry = tail.to_vec();
            let o = out.get_or_insert_with(|| Vec::with_capacity(pos));
            o.extend_from_slice(&chunk[copied_to..pos]);
        } else if let Some(o) = out.as_mut() {
            o.extend_from_slice(&chunk[copied_to..]);
        }
        Step { replace: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A rewriter from a closure.
    struct F<G: FnMut(&[u8], &mut Vec<u8>)>(G);
    impl<G: FnMut(&[u8], &mut Vec<u8>)> Rewriter for F<G> {
        fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
            (self.0)(line, out);
            true
        }
    }

    /// Event-like lines whose name starts with `x` get an `X`.
    fn upper(l: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(l);
        if l.starts_with(b"{\"Name\":\"x") {
            out[9] = b'X';
        }
        out.push(b'\n');
    }

    /// Plays Envoy: feeds chunks, collects what reaches the client.
    fn run(chunks: &[&[u8]], max: usize) -> (Vec<u8>, Vec<usize>) {
        let mut c = LineCutter::new(max);
        let mut sent = Vec::new();
        let mut flushes = Vec::new();
        for (i, ch) in chunks.iter().enumerate() {
            let eos = i + 1 == chunks.len();
            let step = c.step(ch, eos, &mut F(upper));
            sent.extend_from_slice(step.replace.as_deref().unwrap_or(ch));
            flushes.push(sent.len());
        }
        (sent, flushes)
    }

    const INPUT: &[u8] = b"{\"Name\":\"x1\"}\nnot an event\n{\"Name\":\"x22\"}\n\n{\"Name\":\"ab\"}\n{\"Name\":\"x3\"}";
    const WANT: &[u8] = b"{\"Name\":\"X1\"}\nnot an event\n{\"Name\":\"X22\"}\n\n{\"Name\":\"ab\"}\n{\"Name\":\"x3\"}";

    #[test]
    fn lines_are_rewritten_whatever_the_cuts() {
        // Go ends every event with a newline; an unterminated end is not an
        // event and passes as it is.
        for max in [64, 16] {
            for a in 0..=INPUT.len() {
                for b in a..=INPUT.len() {
                    let (sent, _) = run(&[&INPUT[..a], &INPUT[a..b], &INPUT[b..]], max);
                    assert_eq!(sent, WANT, "max {max}, cuts {a} {b}");
                }
            }
        }
    }

    #[test]
    fn the_filter_carries_at_most_max_line() {
        let mut c = LineCutter::new(32);
        let stream: Vec<u8> = (0..2000).flat_map(|i| format!("{{\"Name\":\"x{i}\"}}\n").into_bytes()).collect();
        let mut sent = Vec::new();
        for piece in stream.chunks(37) {
            let step = c.step(piece, false, &mut F(upper));
            sent.extend_from_slice(step.replace.as_deref().unwrap_or(piece));
            assert!(c.carry.len() <= 32);
        }
        let want: Vec<u8> = (0..2000).flat_map(|i| format!("{{\"Name\":\"X{i}\"}}\n").into_bytes()).collect();
        assert_eq!(String::from_utf8(sent).unwrap(), String::from_utf8(want).unwrap());
    }

    #[test]
    fn complete_lines_leave_at_once() {
        let e = b"{\"Name\":\"x\"}\n";
        let (_, flushes) = run(&[e, e, b"{\"Name\":\"x\"}\n{\"Na", b"me\":\"x\"}\n", b""], 64);
        // The third chunk's complete line leaves with it; its cut line with
        // the next.
        assert_eq!(flushes, vec![13, 26, 39, 52, 52]);
    }

    #[test]
    fn a_line_over_the_cap_passes_unchanged_and_the_next_is_rewritten() {
        let mut long = b"{\"Name\":\"x".to_vec();
        long.extend_from_slice(&[b'a'; 100]);
        let (sent, _) = run(&[&long[..40], &long[40..], b"\"}\n{\"Name\":\"x9\"}\n"], 16);
        let mut want = long.clone();
        want.extend_from_slice(b"\"}\n{\"Name\":\"X9\"}\n");
        assert_eq!(sent, want);
    }

    #[test]
    fn a_cut_line_that_is_no_event_passes_at_once() {
        let mut c = LineCutter::new(64);
        assert_eq!(c.step(b"{\"Name\":\"x\"}\nsome text wi", false, &mut F(upper)).replace.unwrap(), b"{\"Name\":\"X\"}\nsome text wi");
        assert_eq!(c.take_carry(), b"");
        assert_eq!(c.step(b"thout end\n{\"Name\":\"x\"}\n", false, &mut F(upper)).replace.unwrap(), b"thout end\n{\"Name\":\"X\"}\n");
    }

    #[test]
    fn unchanged_lines_are_not_copied() {
        let mut c = LineCutter::new(64);
        let step = c.step(b"a\nb\n", false, &mut F(|l: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(l);
            out.push(b'\n');
        }));
        assert_eq!(step, Step { replace: None });
    }
}
