//! The response side: the cluster's add events, rewritten one by one into
//! Kubo's, plus the header set Kubo sends.
//!
//! Names (add-compat rows 1-3), from the sources:
//! - Kubo prints `path.Join(entry, name)` where `entry` is the top-level
//!   multipart entry (kubo core/commands/add.go) and a file added without
//!   a name is named by its CID (core/coreunix/add.go `addNode`).
//! - The cluster prefixes final events with the entry name but not progress
//!   events, and names an unnamed file `""` (ipfs-cluster v1.1.6
//!   adder/ipfsadd/add.go `addNode`, `progressReader`, `outputDagnode`).
//!
//! With `wrap-with-directory` both sides see one unnamed entry; there the
//! wrapping directory itself is `""` on both sides, while each unnamed file
//! is `""` at the cluster and its CID at Kubo: the request's multipart
//! structure tells how many unnamed files come before the directory.

use std::collections::VecDeque;

use super::cidbase::CidBase;
use super::event::{escape, join_raw, KuboEvent, RawEvent};
use super::multipart::Part;
use super::query::AddRequest;
use super::reply::EXPOSED;

/// Per-request state of the rewrite.
#[derive(Debug, Default)]
pub struct AddResponse {
    wrap: bool,
    progress: bool,
    cid_base: Option<CidBase>,
    /// Top-level entries seen in the request and not yet finished in the
    /// response: escaped names.
    entries: VecDeque<Vec<u8>>,
    /// Name of the entry the last request part belongs to (raw bytes), to
    /// tell a new top-level entry from a child of the current one.
    last_top: Option<Vec<u8>>,
    /// With wrap: unnamed files announced by the request, minus those whose
    /// final event went by.
    unnamed_files: u64,
    /// Names are known only while the request's structure could be read.
    names_known: bool,
}

impl AddResponse {
    pub fn new(request: &AddRequest) -> AddResponse {
        AddResponse { wrap: request.wrap, progress: request.progress, cid_base: request.cid_base, names_known: true, ..Default::default() }
    }

    /// Whether names in the answer depend on the upload's structure past
    /// its first part: progress names, and unnamed files under a wrapping
    /// directory. Otherwise the upload need not be read further.
    pub fn needs_upload_structure(&self) -> bool {
        self.progress || self.wrap
    }

    /// The request's structure could not be followed: progress names are
    /// left as the cluster wrote them.
    pub fn names_lost(&mut self) {
        self.names_known = false;
    }

    /// The common line of a large add, told without parsing it: a final
    /// event with a name and a `Size`, when neither progress names, a
    /// wrapping directory nor `cid-base` can change anything.
    fn plainly_unchanged(&self, line: &[u8]) -> bool {
        const START: &[u8] = b"{\"Name\":\"";
        if self.progress || self.wrap || self.cid_base.is_some() {
            return false;
        }
        let named = line.starts_with(START) && line.get(START.len()).is_some_and(|&b| b != b'"');
        // `,"Size":"<digits>"}` closes a final event that has its Size.
        let sized = line.strip_suffix(b"\"}").is_some_and(|head| {
            let digits = head.iter().rev().take_while(|b| b.is_ascii_digit()).count();
            digits > 0 && head[..head.len() - digits].ends_with(b",\"Size\":\"")
        });
        named && sized
    }

    /// A multipart part of the upload, in order (from `multipart::Scanner`).
    pub fn on_part(&mut self, part: Part) {
        if self.wrap {
            if part.path.is_empty() && !part.is_dir {
                self.unnamed_files += 1;
            }
            return;
        }
        // boxo files/multipartfile.go `multipartIterator.Next`: a part
        // inside the current entry's directory belongs to it; anything else
        // starts a new top-level entry (an implicit directory when the part
        // path has several components).
        let (top, nested) = match part.path.iter().position(|&b| b == b'/') {
            Some(slash) => (&part.path[..slash], true),
            None => (&part.path[..], false),
        };
        let continues = nested && self.last_top.as_deref() == Some(top) && !top.is_empty();
        if !continues {
            self.entries.push_back(escape(top));
            self.last_top = Some(top.to_vec());
        }
    }

    /// Rewrites one line (without `\n`): writes Kubo's line into `out`
    /// (with `\n`) and returns true, or returns false when Kubo's line is
    /// the same bytes (also for a line that is not a cluster add event, which
    /// passes unchanged). Most lines of a large add need no change, and
    /// saying so spares copying them.
    pub fn rewrite_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        if self.plainly_unchanged(line) {
            return false;
        }
        let Some(ev) = RawEvent::parse(line) else { return false };
        let entry: Option<&[u8]> = if self.names_known && !self.wrap { self.entries.front().map(Vec::as_slice) } else { None };

        let Some(hash) = ev.hash else {
            // Progress: Kubo joins the entry name in front.
            let Some(e) = entry.filter(|e| !e.is_empty()) else { return false };
            KuboEvent { name: join_raw(e, ev.name).into(), hash: None, bytes: ev.bytes, size: ev.size }.write(out);
            return true;
        };

        let unnamed_file = ev.name.is_empty() && (!self.wrap || self.unnamed_files > 0);
        if self.wrap && unnamed_file {
            self.unnamed_files -= 1;
        }
        if !self.wrap && entry == Some(ev.name) {
            self.entries.pop_front();
        }
        let new_hash = self.cid_base.and_then(|b| std::str::from_utf8(hash).ok().and_then(|h| b.encode(h))).map(|h| escape(&h));
        // Kubo always writes Size on final events; the cluster omits "0".
        if !unnamed_file && new_hash.is_none() && ev.size.is_some() {
            return false;
        }
        let name = if unnamed_file { hash.into() } else { ev.name.into() };
        let hash = new_hash.map_or(hash.into(), Into::into);
        KuboEvent { name, hash: Some(hash), bytes: ev.bytes, size: Some(ev.size.unwrap_or(b"0")) }.write(out);
        true
    }
}

impl super::lines::Rewriter for AddResponse {
    fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        self.rewrite_line(line, out)
    }
}

/// Turns the cluster proxy's response headers for a streaming add into
/// Kubo's (add-compat row 13): drops `Cache-Control` and `Connection`,
/// replaces `Server`, adds the CORS `Access-Control-*` pair go-ipfs-cmds
/// always sends, and puts back the `Vary: Origin` rs/cors gives an actual
/// request (the cluster copies the preflight's); `Content-Length` goes
/// because the body changes length. Returned in the order Go writes them:
/// sorted by name, `Date` last.
pub fn kubo_headers(cluster: &[(String, String)], server: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(cluster.len() + 2);
    let mut date = None;
    let mut status = None;
    for (k, v) in cluster {
        match k.to_ascii_lowercase().as_str() {
            ":status" => status = Some(v.clone()),
            "date" => date = Some(v.clone()),
            "cache-control" | "connection" | "content-length" | "server" | "transfer-encoding" | "keep-alive" => {}
            "access-control-allow-headers" | "access-control-expose-headers" | "vary" => {}
            key => out.push((key.to_string(), v.clone())),
        }
    }
    out.push(("access-control-allow-headers".into(), EXPOSED.into()));
    out.push(("access-control-expose-headers".into(), EXPOSED.into()));
    out.push(("vary".into(), "Origin".into()));
    if !server.is_empty() {
        out.push(("server".into(), server.into()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut all = Vec::with_capacity(out.len() + 2);
    all.push((":status".to_string(), status.unwrap_or_else(|| "200".into())));
    all.extend(out);
    if let Some(d) = date {
        all.push(("date".into(), d));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const A: &str = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM";

    fn part(p: &str, dir: bool) -> Part {
        Part { path: p.as_bytes().to_vec(), is_dir: dir, malformed: None }
    }

    /// What reaches the client for `line`.
    fn rewrite(r: &mut AddResponse, line: &str) -> String {
        let mut out = Vec::new();
        if !r.rewrite_line(line.as_bytes(), &mut out) {
            assert!(out.is_empty(), "an unchanged line must write nothing");
            return format!("{line}\n");
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unnamed_file_gets_its_cid_and_a_size() {
        let mut r = AddResponse::new(&AddRequest::default());
        r.on_part(part("", false));
        assert_eq!(rewrite(&mut r, r#"{"Name":""}"#), "{\"Name\":\"\"}\n");
        assert_eq!(rewrite(&mut r, &format!(r#"{{"Name":"","Hash":"{A}","Size":"6"}}"#)), format!("{{\"Name\":\"{A}\",\"Hash\":\"{A}\",\"Size\":\"6\"}}\n"));
    }

    #[test]
    fn named_file_progress_gets_the_name() {
        let mut r = AddResponse::new(&AddRequest { progress: true, ..Default::default() });
        r.on_part(part("f.bin", false));
        assert_eq!(rewrite(&mut r, r#"{"Name":"","Bytes":262144}"#), "{\"Name\":\"f.bin\",\"Bytes\":262144}\n");
        assert_eq!(rewrite(&mut r, &format!(r#"{{"Name":"f.bin","Hash":"{A}"}}"#)), format!("{{\"Name\":\"f.bin\",\"Hash\":\"{A}\",\"Size\":\"0\"}}\n"));
    }

    #[test]
    fn directory_progress_gets_the_entry_prefix_then_next_entry() {
        let mut r = AddResponse::new(&AddRequest { progress: true, ..Default::default() });
        for (p, d) in [("d", true), ("d/a", false), ("d/s", true), ("d/s/b", false), ("g<", false)] {
            r.on_part(part(p, d));
        }
        assert_eq!(rewrite(&mut r, r#"{"Name":"a","Bytes":1}"#), "{\"Name\":\"d/a\",\"Bytes\":1}\n");
        assert_eq!(rewrite(&mut r, &format!(r#"{{"Name":"d/a","Hash":"{A}","Size":"9"}}"#)), format!("{{\"Name\":\"d/a\",\"Hash\":\"{A}\",\"Size\":\"9\"}}\n"));
        assert_eq!(rewrite(&mut r, r#"{"Name":"s/b","Bytes":1}"#), "{\"Name\":\"d/s/b\",\"Bytes\":1}\n");
        rewrite(&mut r, &format!(r#"{{"Name":"d/s","Hash":"{A}","Size":"9"}}"#));
        rewrite(&mut r, &format!(r#"{{"Name":"d","Hash":"{A}","Size":"9"}}"#));
        assert_eq!(rewrite(&mut r, r#"{"Name":"","Bytes":1}"#), "{\"Name\":\"g\\u003c\",\"Bytes\":1}\n");
    }

    #[test]
    fn wrapped_unnamed_files_get_cids_but_the_wrapper_stays_unnamed() {
        let mut r = AddResponse::new(&AddRequest { wrap: true, ..Default::default() });
        r.on_part(part("", false));
        let file = rewrite(&mut r, &format!(r#"{{"Name":"","Hash":"{A}","Size":"6"}}"#));
        assert!(file.starts_with(&format!("{{\"Name\":\"{A}\"")), "{file}");
        let dir = rewrite(&mut r, &format!(r#"{{"Name":"","Hash":"{A}","Size":"6"}}"#));
        assert!(dir.starts_with("{\"Name\":\"\""), "{dir}");
    }

    #[test]
    fn cid_base_applies_to_hash_not_name() {
        let mut r = AddResponse::new(&AddRequest { cid_base: Some(CidBase::by_name("base32").unwrap()), ..Default::default() });
        r.on_part(part("", false));
        let out = rewrite(&mut r, &format!(r#"{{"Name":"","Hash":"{A}","Size":"6"}}"#));
        assert!(out.starts_with(&format!("{{\"Name\":\"{A}\",\"Hash\":\"bafy")), "{out}");
    }

    #[test]
    fn the_plain_fast_path_agrees_with_the_parse() {
        let plain = AddResponse::new(&AddRequest::default());
        for (line, fast) in [
            (format!(r#"{{"Name":"a/b","Hash":"{A}","Size":"17"}}"#), true),
            (format!(r#"{{"Name":"","Hash":"{A}","Size":"17"}}"#), false),
            (format!(r#"{{"Name":"a","Hash":"{A}"}}"#), false),
            (format!(r#"{{"Name":"a","Hash":"{A}","Size":""}}"#), false),
            (r#"{"Name":"a","Bytes":262144}"#.to_string(), false),
        ] {
            assert_eq!(plain.plainly_unchanged(line.as_bytes()), fast, "{line}");
        }
        let progress = AddResponse::new(&AddRequest { progress: true, ..Default::default() });
        assert!(!progress.plainly_unchanged(format!(r#"{{"Name":"a/b","Hash":"{A}","Size":"17"}}"#).as_bytes()));
    }

    #[test]
    fn foreign_lines_pass_unchanged() {
        let mut r = AddResponse::new(&AddRequest::default());
        assert_eq!(rewrite(&mut r, r#"{"Message":"x","Code":0,"Type":"error"}"#), "{\"Message\":\"x\",\"Code\":0,\"Type\":\"error\"}\n");
        assert_eq!(rewrite(&mut r, "\u{fffd}garbage"), "\u{fffd}garbage\n");
    }

    #[test]
    fn headers_become_kubos() {
        let cluster: Vec<(String, String)> = [
            (":status", "200"),
            ("access-control-expose-headers", "X-Stream-Output, X-Chunked-Output, X-Content-Length"),
            ("cache-control", "no-cache"),
            ("connection", "close"),
            ("content-type", "application/json"),
            ("server", "ipfs-cluster/ipfsproxy/v1.1.6"),
            ("trailer", "X-Stream-Error"),
            ("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            ("x-chunked-output", "1"),
            ("date", "Wed, 25 Nov 2026 09:00:00 GMT"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let h = kubo_headers(&cluster, "kubo/0.42.0");
        let names: Vec<_> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, [":status", "access-control-allow-headers", "access-control-expose-headers", "content-type", "server", "trailer", "vary", "x-chunked-output", "date"]);
        assert!(h.contains(&("vary".into(), "Origin".into())));
        assert!(h.contains(&("server".into(), "kubo/0.42.0".into())));
    }
}
