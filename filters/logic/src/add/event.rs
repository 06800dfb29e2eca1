//! One NDJSON line of the cluster proxy's add output, read and rewritten
//! into the line Kubo would have written.
//!
//! The cluster encodes `ipfsAddResp{Name, Hash omitempty, Bytes omitempty,
//! Size omitempty}` (ipfs-cluster v1.1.6 api/ipfsproxy/ipfsproxy.go); Kubo
//! encodes `AddEvent{Name, Hash, Bytes, Size, Mode, Mtime, MtimeNsecs}`
//! (kubo core/commands/add.go). Both are Go `encoding/json`, compact, fields
//! in struct order. Values are kept as the raw bytes between the quotes so
//! that what the filter does not change reaches the client byte for byte.

use crate::gojson;

/// The fields of one cluster event, as raw JSON text (string bodies without
/// their quotes, numbers as digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent<'a> {
    pub name: &'a [u8],
    pub hash: Option<&'a [u8]>,
    pub bytes: Option<&'a [u8]>,
    pub size: Option<&'a [u8]>,
}

impl<'a> RawEvent<'a> {
    /// Parses one line (without its `\n`). `None` when the line is not
    /// exactly what the cluster's encoder writes: such a line is passed on
    /// untouched by the caller.
    pub fn parse(line: &'a [u8]) -> Option<Self> {
        let mut p = Parser { s: line, i: 0 };
        p.eat(b'{')?;
        p.key(b"Name")?;
        let name = p.string()?;
        let mut ev = RawEvent { name, hash: None, bytes: None, size: None };
        // Optional fields, in struct order, each at most once.
        let mut order = 0;
        while p.peek() == Some(b',') {
            p.i += 1;
            let key = p.string()?;
            p.eat(b':')?;
            let (rank, slot) = match key {
                b"Hash" => (1, &mut ev.hash),
                b"Bytes" => (2, &mut ev.bytes),
                b"Size" => (3, &mut ev.size),
                _ => return None,
            };
            if rank <= order {
                return None;
            }
            order = rank;
            *slot = Some(if rank == 2 { p.integer()? } else { p.string()? });
        }
        p.eat(b'}')?;
        if p.i != line.len() {
            return None;
        }
        Some(ev)
    }

}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.i += 1)
    }
    fn key(&mut self, k: &[u8]) -> Option<()> {
        (self.string()? == k).then_some(())?;
        self.eat(b':')
    }
    /// A string's raw body. Escapes are checked for shape only.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.i += 2,
                0x00..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let body = self.s.get(start..self.i)?;
        self.i += 1;
        Some(body)
    }
    /// A non-negative integer as Go writes it (no sign, no leading zeros).
    fn integer(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        (!digits.is_empty() && (digits == b"0" || digits[0] != b'0')).then_some(digits)
    }
}

/// What to put in the rewritten event, decided by the caller from the
/// request (see `response.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KuboEvent<'a> {
    /// Raw (escaped) Name body.
    pub name: std::borrow::Cow<'a, [u8]>,
    pub hash: Option<std::borrow::Cow<'a, [u8]>>,
    pub bytes: Option<&'a [u8]>,
    pub size: Option<&'a [u8]>,
}

impl KuboEvent<'_> {
    /// Writes the event as Kubo's encoder does, with the trailing newline.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"Name\":\"");
        out.extend_from_slice(&self.name);
        out.push(b'"');
        if let Some(h) = &self.hash {
            out.extend_from_slice(b",\"Hash\":\"");
            out.extend_from_slice(h);
            out.push(b'"');
        }
        // `Bytes` is omitempty: Kubo drops a zero count.
        if let Some(b) = self.bytes.filter(|b| *b != b"0") {
            out.extend_from_slice(b",\"Bytes\":");
            out.extend_from_slice(b);
        }
        if let Some(s) = self.size {
            out.extend_from_slice(b",\"Size\":\"");
            out.extend_from_slice(s);
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// `path.Join(dir, name)` on raw escaped JSON string bodies. The cluster's
/// names are already clean (it builds them with `filepath.Join`) and a
/// top-level entry name has no `/`, so joining the escaped forms equals
/// escaping the joined path: Go escapes character by character and never
/// escapes `/`.
pub fn join_raw(dir: &[u8], name: &[u8]) -> Vec<u8> {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_vec(),
        (_, true) => dir.to_vec(),
        _ => {
            let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
            v.extend_from_slice(dir);
            v.push(b'/');
            v.extend_from_slice(name);
            v
        }
    }
}

/// Escapes raw bytes (a name taken from the request) into a JSON body.
pub fn escape(name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len());
    gojson::push_escaped(&mut v, name);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn parses_cluster_events() {
        let e = RawEvent::parse(br#"{"Name":"","Hash":"QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM","Size":"435731"}"#).unwrap();
        assert_eq!(e.name, b"");
        assert_eq!(e.hash, Some(&b"QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM"[..]));
        assert_eq!(e.size, Some(&b"435731"[..]));
        assert!(e.hash.is_some());
        let p = RawEvent::parse(br#"{"Name":"d\u003c/a","Bytes":262144}"#).unwrap();
        assert_eq!(p.name, br"d\u003c/a");
        assert_eq!(p.bytes, Some(&b"262144"[..]));
        assert!(p.hash.is_none());
        assert!(RawEvent::parse(br#"{"Name":"x"}"#).is_some());
    }

    #[test]
    fn refuses_what_go_would_not_write() {
        for l in [
            &br#"{"Name":"x","Hash":"a","Hash":"b"}"#[..],
            br#"{"Name":"x","Size":"1","Hash":"a"}"#,
            br#"{"Hash":"a","Name":"x"}"#,
            br#"{"Name":"x","Other":1}"#,
            br#"{"Name":"x","Bytes":-1}"#,
            br#"{"Name":"x","Bytes":01}"#,
            br#"{"Name": "x"}"#,
            br#"{"Name":"x"} "#,
            br#"{"Name":"x"#,
            br#"{"Name":"x\"#,
            br#"[{"Name":"x"}]"#,
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(RawEvent::parse(l), None, "{}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn writes_kubo_field_order() {
        let mut out = Vec::new();
        KuboEvent { name: b"a"[..].into(), hash: Some(b"Qm"[..].into()), bytes: Some(b"0"), size: Some(b"0") }.write(&mut out);
        assert_eq!(out, b"{\"Name\":\"a\",\"Hash\":\"Qm\",\"Size\":\"0\"}\n");
    }

    #[test]
    fn joins_like_path_join() {
        assert_eq!(join_raw(b"", b"a"), b"a");
        assert_eq!(join_raw(b"d", b""), b"d");
        assert_eq!(join_raw(b"d", b"a/b"), b"d/a/b");
    }
}
