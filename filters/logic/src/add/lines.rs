//! Cutting a streamed response body into lines without holding it.
//!
//! Envoy gives a filter each body chunk; a filter that returns `Pause`
//! makes Envoy keep the chunk and hand it back, grown by the next one. This
//! module decides, per callback, what to write back and whether to pause:
//! complete lines are rewritten and sent at once; an incomplete last line
//! is left for Envoy to hold (not this filter, whose memory would lose it
//! when trailers follow: see ../shared/reference/proxy-wasm-notes.md) until
//! it completes; complete lines in front of it wait with it, which costs
//! the time until the rest of that line arrives (the cluster flushes whole
//! events, so a cut line is a TCP segment boundary). A line longer than the
//! cap is let through unchanged.

/// The per-line work, and whether to keep the buffer anyway.
pub trait Rewriter {
    /// Turns one complete line (without `\n`) into output bytes appended
    /// to `out` (including `\n`).
    fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>);
}

/// What to do with the body buffer in one callback.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// The new content of the whole buffer, if it changed.
    pub replace: Option<Vec<u8>>,
    /// Keep the buffer (incomplete line) instead of sending it.
    pub pause: bool,
}

#[derive(Debug)]
pub struct LineCutter {
    max_line: usize,
    /// Bytes at the start of the buffered body already rewritten during an
    /// earlier paused callback.
    done: usize,
    /// Inside a line longer than `max_line`, which passes as it is.
    passing_long_line: bool,
    /// How many lines over the cap went by (for the log).
    pub long_lines: u64,
}

impl LineCutter {
    pub fn new(max_line: usize) -> LineCutter {
        LineCutter { max_line, done: 0, passing_long_line: false, long_lines: 0 }
    }

    /// `buf` is the whole buffered body (what Envoy returns for
    /// `get_http_response_body(0, size)`).
    pub fn step(&mut self, buf: &[u8], end_of_stream: bool, rw: &mut impl Rewriter) -> Step {
        let done = self.done.min(buf.len());
        let mut pos = done;
        let mut out: Vec<u8> = Vec::new();
        let mut changed = false;

        if self.passing_long_line {
            match buf[pos..].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    pos += nl + 1;
                    self.passing_long_line = false;
                }
                None => {
                    self.done = 0;
                    return Step { replace: None, pause: false };
                }
            }
        }
        let lines_start = pos;
        let mut copied_to = lines_start;
        while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
            let line = &buf[pos..pos + nl];
            let before = out.len();
            out.extend_from_slice(&buf[copied_to..pos]);
            let mark = out.len();
            rw.rewrite(line, &mut out);
            if &out[mark..] != &buf[pos..pos + nl + 1] {
                changed = true;
            } else {
                // Unchanged: drop the copy, extend the verbatim run.
                out.truncate(before);
                pos += nl + 1;
                continue;
            }
            pos += nl + 1;
            copied_to = pos;
        }
        let tail = &buf[pos..];
        let pause = !end_of_stream && !tail.is_empty() && tail.len() <= self.max_line;
        if !end_of_stream && tail.len() > self.max_line {
            self.passing_long_line = true;
            self.long_lines += 1;
        }
        let replace = changed.then(|| {
            let mut whole = Vec::with_capacity(lines_start + out.len() + (buf.len() - copied_to));
            whole.extend_from_slice(&buf[..lines_start]);
            whole.extend_from_slice(&out);
            whole.extend_from_slice(&buf[copied_to..]);
            whole
        });
        // After a pause Envoy hands the same bytes back, first part done.
        self.done = if pause {
            let new_len = replace.as_ref().map_or(buf.len(), Vec::len);
            new_len - tail.len()
        } else {
            0
        };
        Step { replace, pause }
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
        fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>) {
            (self.0)(line, out)
        }
    }

    /// Plays Envoy: feeds chunks, keeps the buffer on pause, collects what
    /// would reach the client.
    fn run(chunks: &[&[u8]], max: usize) -> (Vec<u8>, Vec<usize>) {
        let mut c = LineCutter::new(max);
        let mut held: Vec<u8> = Vec::new();
        let mut sent = Vec::new();
        let mut flushes = Vec::new();
        for (i, ch) in chunks.iter().enumerate() {
            held.extend_from_slice(ch);
            let eos = i + 1 == chunks.len();
            let step = c.step(&held, eos, &mut F(|l: &[u8], out: &mut Vec<u8>| {
                if l.starts_with(b"x") {
                    out.extend_from_slice(b"X");
                    out.extend_from_slice(&l[1..]);
                } else {
                    out.extend_from_slice(l);
                }
                out.push(b'\n');
            }));
            if let Some(r) = step.replace {
                held = r;
            }
            if !step.pause {
                sent.extend_from_slice(&held);
                flushes.push(sent.len());
                held.clear();
            }
        }
        (sent, flushes)
    }

    #[test]
    fn lines_are_rewritten_whatever_the_cuts() {
        let input = b"x1\nab\nx22\n\nx3";
        // Go ends every event with a newline; an unterminated end is not an
        // event and passes as it is.
        let want = b"X1\nab\nX22\n\nx3".to_vec();
        for a in 0..=input.len() {
            for b in a..=input.len() {
                let (sent, _) = run(&[&input[..a], &input[a..b], &input[b..]], 64);
                assert_eq!(sent, want, "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn complete_lines_leave_at_once_unless_a_cut_line_follows() {
        let (_, flushes) = run(&[b"x1\n", b"x2\n", b"x3\nx", b"4\n", b""], 64);
        assert_eq!(flushes, vec![3, 6, 12, 12]);
    }

    #[test]
    fn a_line_over_the_cap_passes_unchanged_and_the_next_is_rewritten() {
        let long = [b'x'; 100];
        let (sent, _) = run(&[&long[..40], &long[40..], b"\nx9\n"], 16);
        let mut want = long.to_vec();
        want.extend_from_slice(b"\nX9\n");
        assert_eq!(sent, want);
    }

    #[test]
    fn unterminated_last_line_passes_at_end_of_stream() {
        let (sent, _) = run(&[b"x1\nx2"], 64);
        assert_eq!(sent, b"X1\nx2");
    }

    #[test]
    fn held_buffers_are_not_rewritten_twice() {
        let mut c = LineCutter::new(64);
        let mut calls = 0;
        let rw = |l: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(b"<");
            out.extend_from_slice(l);
            out.extend_from_slice(b">\n");
        };
        let s1 = c.step(b"a\nb", false, &mut F(|l: &[u8], o: &mut Vec<u8>| { calls += 1; rw(l, o) }));
        assert!(s1.pause);
        let held = s1.replace.unwrap();
        assert_eq!(held, b"<a>\nb");
        let mut buf = held.clone();
        buf.extend_from_slice(b"\n");
        let s2 = c.step(&buf, false, &mut F(|l: &[u8], o: &mut Vec<u8>| { calls += 1; rw(l, o) }));
        assert_eq!(s2.replace.unwrap(), b"<a>\n<b>\n");
        assert_eq!(calls, 2);
    }

    #[test]
    fn unchanged_lines_are_not_copied() {
        let mut c = LineCutter::new(64);
        let step = c.step(b"a\nb\n", false, &mut F(|l: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(l);
            out.push(b'\n');
        }));
        assert_eq!(step, Step { replace: None, pause: false });
    }
}
