//! ipfs-cluster v1.1.6 IPFS-proxy stand-in (`/api/v0/add` only):
//! api/ipfsproxy/ipfsproxy.go `addHandler`, `ipfsErrorResponder`;
//! api/ipfsproxy/headers.go `setHeaders`; api/add.go `AddParamsFromQuery`;
//! adder/adderutils/adderutils.go `AddMultipartHTTPHandler`; adder/adder.go `FromFiles`;
//! adder/single/dag_service.go `Finalize` (pins the last root).
//!
//! The proxy copies some headers from its Kubo daemon (`setHeaders`): the stand-in
//! assumes a reachable Kubo as the Kubo stand-in answers (no `Origin` on the request):
//! `Vary` from the OPTIONS preflight, `Access-Control-Expose-Headers` from
//! `POST /api/v0/version`.

use crate::adder::{AddOut, Adder, Flavor};
use crate::dag::{FileParams, GoErr, Prefix, DEFAULT_LINKS_PER_BLOCK};
use crate::gofmt::{self, query_get};
use crate::gohttp::{http_error, GoResponse, HandlerOutcome, Header, Request};
use crate::kubo::{error_json, multihash_known, EXPOSED};
use crate::multipart::{self, DirIter, Entry, Meta, MultipartReader, Walker};
use crate::StandinState;

/// ipfs-cluster version/version.go.
pub const CLUSTER_VERSION: &str = "1.1.6";
/// adder/util.go `ErrDAGNotFound`.
pub const ERR_DAG_NOT_FOUND: &str = "dagservice: a Get operation was attempted while cluster-adding (this is likely a bug)";

fn set_headers(w: &mut GoResponse, req: &Request, kubo_port: u16) {
    // setCORSHeaders: OPTIONS to Kubo with the request's Origin and
    // `Access-Control-Request-Method: <method>`; ACAO, Vary, ACAC are copied.
    let mut pre = Header::default();
    crate::kubo::preflight(req.header.get("Origin"), &req.method, "", &mut pre, kubo_port);
    for k in ["Access-Control-Allow-Origin", "Vary", "Access-Control-Allow-Credentials"] {
        if let Some(v) = pre.0.get(k) {
            w.header.0.insert(k.to_string(), v.clone());
        }
    }
    // setAdditionalIpfsHeaders: extractHeadersDefault from POST /api/v0/version.
    w.header.set("Access-Control-Expose-Headers", EXPOSED);
    // setClusterProxyHeaders.
    w.header.set("Content-Type", "application/json");
    w.header.set("Server", &format!("ipfs-cluster/ipfsproxy/{}", CLUSTER_VERSION));
}

/// ipfsErrorResponder: cmds.Error via json.Marshal (no newline), status 500.
fn ipfs_error(w: &mut GoResponse, msg: &str) {
    w.write_header(500);
    w.write(&error_json(msg, false));
}

/// ipfsAddResp JSON (struct order Name, Hash, Bytes, Size; Size only when non-zero).
fn event_json(ev: &AddOut) -> Vec<u8> {
    let mut o = b"{\"Name\":".to_vec();
    gofmt::json_string(&mut o, &ev.name);
    if let Some(c) = ev.cid {
        o.extend_from_slice(b",\"Hash\":");
        gofmt::json_string(&mut o, c.to_string().as_bytes());
    }
    if ev.bytes != 0 {
        o.extend_from_slice(format!(",\"Bytes\":{}", ev.bytes).as_bytes());
    }
    if ev.cid.is_some() && ev.size != 0 {
        o.extend_from_slice(format!(",\"Size\":\"{}\"", ev.size).as_bytes());
    }
    o.push(b'}');
    o
}

/// The subset of api.AddParams the add path reads.
struct Params {
    layout: String,
    chunker: String,
    hash: String,
    wrap: bool,
    progress: bool,
    cid_version: i64,
    raw_leaves: bool,
    stream_channels: bool,
    no_pin: bool,
    shard: bool,
    format: String,
}

fn parse_bool_param(q: &[(String, Vec<String>)], name: &str, dest: &mut bool) -> Result<(), String> {
    let v = query_get(q, name);
    if !v.is_empty() {
        *dest = gofmt::parse_bool(v).ok_or_else(|| format!("parameter {} invalid", name))?;
    }
    Ok(())
}

fn parse_int_param(q: &[(String, Vec<String>)], name: &str, dest: &mut i64) -> Result<(), String> {
    let v = query_get(q, name);
    if !v.is_empty() {
        *dest = gofmt::atoi(v).ok_or_else(|| format!("parameter {} invalid", name))?;
    }
    Ok(())
}

/// api/add.go `AddParamsFromQuery` (and PinOptions.FromQuery's error cases that can be
/// hit with plain values).
fn params_from_query(q: &[(String, Vec<String>)]) -> Result<Params, String> {
    // PinOptions.FromQuery
    let mut rmin = 0;
    let mut rmax = 0;
    let repl = query_get(q, "replication");
    if !repl.is_empty() {
        let mut d = 0;
        parse_int_param(&[("replication-min".into(), vec![repl.into()])], "replication-min", &mut d)?;
    } else {
        parse_int_param(q, "replication-min", &mut rmin)?;
        parse_int_param(q, "replication-max", &mut rmax)?;
    }
    let ss = query_get(q, "shard-size");
    if !ss.is_empty() && ss.parse::<u64>().is_err() {
        return Err("parameter shard_size is invalid".into());
    }
    let ei = query_get(q, "expire-in");
    if query_get(q, "expire-at").is_empty() && !ei.is_empty() {
        // time.ParseDuration error texts are not reproduced; only acceptance.
        if ei.trim_start_matches(['-', '+']).is_empty() || !ei.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') {
            return Err(format!("expire-in cannot be parsed: time: invalid duration {}", gofmt::go_quote(ei.as_bytes())));
        }
    }
    let layout = query_get(q, "layout").to_string();
    if !matches!(layout.as_str(), "trickle" | "balanced" | "") {
        return Err("layout parameter is invalid".into());
    }
    let chunker = match query_get(q, "chunker") {
        "" => "size-262144".to_string(),
        c => c.to_string(),
    };
    let hash = match query_get(q, "hash") {
        "" => "sha2-256".to_string(),
        h => h.to_string(),
    };
    let format = query_get(q, "format").to_string();
    if !matches!(format.as_str(), "car" | "unixfs" | "") {
        return Err("format parameter is invalid".into());
    }
    let mut p = Params {
        layout,
        chunker,
        hash,
        wrap: false,
        progress: false,
        cid_version: 0,
        raw_leaves: false,
        stream_channels: true,
        no_pin: false,
        shard: false,
        format,
    };
    let (mut local, mut recursive, mut hidden, mut nocopy) = (false, false, false, false);
    parse_bool_param(q, "local", &mut local)?;
    parse_bool_param(q, "recursive", &mut recursive)?;
    parse_bool_param(q, "hidden", &mut hidden)?;
    parse_bool_param(q, "wrap-with-directory", &mut p.wrap)?;
    parse_bool_param(q, "shard", &mut p.shard)?;
    parse_bool_param(q, "progress", &mut p.progress)?;
    parse_int_param(q, "cid-version", &mut p.cid_version)?;
    if p.cid_version > 0 {
        p.raw_leaves = true;
    }
    parse_bool_param(q, "raw-leaves", &mut p.raw_leaves)?;
    parse_bool_param(q, "stream-channels", &mut p.stream_channels)?;
    parse_bool_param(q, "nocopy", &mut nocopy)?;
    parse_bool_param(q, "no-pin", &mut p.no_pin)?;
    let _ = (rmin, rmax, local, recursive, hidden, nocopy);
    Ok(p)
}

pub fn handle(state: &StandinState, req: &Request, w: &mut GoResponse) -> HandlerOutcome {
    if req.path == "/__standin/pins" {
        crate::pins_hook(state, req, w);
        return HandlerOutcome::Done;
    }
    let hijacked = matches!(req.method.as_str(), "POST" | "GET" | "PUT");
    if req.path != "/api/v0/add" || !hijacked {
        if req.path == "/api/v0/add" {
            // Reverse-proxied to Kubo: Kubo's answer with its headers copied into the
            // header map, so Date and Content-Length are sorted with the rest.
            kubo_answer_via_proxy(req, w);
        } else {
            http_error(w, "404 page not found", 404);
        }
        return HandlerOutcome::Done;
    }
    handle_add(state, req, w)
}

fn kubo_answer_via_proxy(req: &Request, w: &mut GoResponse) {
    if req.method == "OPTIONS" && !req.header.get("Access-Control-Request-Method").is_empty() {
        w.header.set("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
        w.header.set("Date", &gofmt::http_date_now());
        w.write_header(204);
        return;
    }
    w.header.set("Vary", "Origin");
    w.header.set("Allow", "OPTIONS, POST");
    w.header.set("Date", &gofmt::http_date_now());
    if req.method == "OPTIONS" {
        w.write_header(204);
        return;
    }
    w.header.set("Content-Type", "text/plain; charset=utf-8");
    w.header.set("X-Content-Type-Options", "nosniff");
    w.header.set("Content-Length", "25");
    w.write_header(405);
    w.write(b"405 - Method Not Allowed\n");
}

fn handle_add(state: &StandinState, req: &Request, w: &mut GoResponse) -> HandlerOutcome {
    set_headers(w, req, state.kubo_port);
    // r.MultipartReader()
    let ct = req.header.get("Content-Type");
    if ct.is_empty() {
        ipfs_error(w, "error reading request: request Content-Type isn't multipart/form-data");
        return HandlerOutcome::Done;
    }
    let boundary = match multipart::parse_media_type(ct) {
        Ok((d, params)) if d == "multipart/form-data" => match multipart::param(&params, "boundary") {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => {
                ipfs_error(w, "error reading request: no multipart boundary param in Content-Type");
                return HandlerOutcome::Done;
            }
        },
        _ => {
            ipfs_error(w, "error reading request: request Content-Type isn't multipart/form-data");
            return HandlerOutcome::Done;
        }
    };
    let q = req.query();
    if query_get(&q, "only-hash") == "true" {
        // No `return` upstream: the add goes on below.
        ipfs_error(w, "only-hash is not supported when adding to cluster");
    }
    let mut params = match params_from_query(&q) {
        Ok(p) => p,
        Err(e) => {
            ipfs_error(w, &format!("error parsing options:{}", e));
            return HandlerOutcome::Done;
        }
    };
    if query_get(&q, "trickle") == "true" {
        params.layout = "trickle".into();
    }
    if query_get(&q, "pin") == "false" {
        params.no_pin = true;
    }

    // AddMultipartHTTPHandler
    w.header.set("Content-Type", "application/json");
    w.header.set("Cache-Control", "no-cache");
    w.header.set("Connection", "close");
    let mut walker = Walker::new(MultipartReader::new(req.body.clone(), &boundary));
    if !params.stream_channels {
        let mut buffered: Vec<AddOut> = Vec::new();
        let res = from_files(state, &params, &mut walker, &mut |ev| {
            buffered.push(ev);
            Ok(())
        });
        match res {
            Err(Outcome::Panic) => return HandlerOutcome::Abort,
            Err(Outcome::Err(e)) => {
                w.write_header(500);
                let mut o = b"{\"code\":500,\"message\":".to_vec();
                gofmt::json_string(&mut o, e.as_bytes());
                o.extend_from_slice(b"}\n");
                w.write(&o);
            }
            Ok(()) => {
                w.write_header(200);
                let mut o = Vec::new();
                if buffered.is_empty() {
                    o.extend_from_slice(b"null");
                } else {
                    o.push(b'[');
                    for (i, ev) in buffered.iter().enumerate() {
                        if i > 0 {
                            o.push(b',');
                        }
                        o.extend_from_slice(&event_json(ev));
                    }
                    o.push(b']');
                }
                o.push(b'\n');
                w.write(&o);
            }
        }
        return HandlerOutcome::Done;
    }
    w.header.set("X-Chunked-Output", "1");
    w.header.set("Trailer", "X-Stream-Error");
    w.write_header(200);
    let res = {
        let wr = &mut *w;
        from_files(state, &params, &mut walker, &mut |ev| {
            let mut line = event_json(&ev);
            line.push(b'\n');
            wr.write(&line);
            wr.flush();
            Ok(())
        })
    };
    match res {
        Err(Outcome::Panic) => HandlerOutcome::Abort,
        Err(Outcome::Err(e)) => {
            w.header.set("X-Stream-Error", &e);
            HandlerOutcome::Done
        }
        Ok(()) => HandlerOutcome::Done,
    }
}

enum Outcome {
    Err(String),
    /// `Finalize` on a DAG service that never received a block dereferences a nil
    /// BlockStreamer: the Go handler panics and net/http drops the connection.
    Panic,
}

/// adder.go `FromFiles` + single DAGService `Finalize`.
fn from_files<R: crate::dag::GoRead>(
    state: &StandinState,
    p: &Params,
    walker: &mut Walker<R>,
    emit: &mut dyn FnMut(AddOut) -> Result<(), GoErr>,
) -> Result<(), Outcome> {
    if p.shard {
        return Err(Outcome::Err("standin: shard is not implemented".into()));
    }
    match p.format.as_str() {
        "" | "unixfs" => {}
        _ => return Err(Outcome::Err("standin: format=car is not implemented".into())),
    }
    // newIpfsAdder
    if p.cid_version != 0 && p.cid_version != 1 {
        return Err(Outcome::Err(format!("bad CID Version: unknown CID version: {}", p.cid_version)));
    }
    let hash = p.hash.to_lowercase();
    if !multihash_known(&hash) {
        return Err(Outcome::Err("hash function name not known".into()));
    }
    if hash != "sha2-256" {
        return Err(Outcome::Err(format!("standin: hash function {} is not implemented", hash)));
    }
    let file = FileParams {
        prefix: Prefix { version: p.cid_version as u8 },
        raw_leaves: p.raw_leaves,
        chunk_size: 0,
        max_links: DEFAULT_LINKS_PER_BLOCK,
        trickle: p.layout == "trickle",
    };
    let mut adder = Adder::new(Flavor::Cluster, file, p.chunker.clone(), emit);
    adder.progress = p.progress;
    let mut top = DirIter::root();
    let mut wrapped = false;
    let mut root: Option<String> = None;
    loop {
        let (name, entry) = if p.wrap {
            if wrapped {
                break;
            }
            wrapped = true;
            (Vec::new(), Entry::Dir { path: b"/".to_vec(), meta: Meta::default() })
        } else {
            match walker.next(&mut top) {
                Some(x) => x,
                None => break,
            }
        };
        adder.output_prefix = name;
        let nd = adder.add_all(walker, entry).map_err(|e| Outcome::Err(e.to_string()))?;
        root = Some(nd.cid.to_string());
    }
    if let Some(e) = top.err() {
        return Err(Outcome::Err(e.to_string()));
    }
    let Some(root) = root else { return Err(Outcome::Panic) };
    drop(adder);
    if !p.no_pin {
        let delay = state.pin_delay_ms;
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        state.pins.lock().unwrap_or_else(|p| p.into_inner()).push(root);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_bools_are_parsebool_except_three() {
        let q = gofmt::parse_query("progress=T&wrap-with-directory=1&raw-leaves=False");
        let p = params_from_query(&q).ok().unwrap();
        assert!(p.progress && p.wrap && !p.raw_leaves);
        let q = gofmt::parse_query("progress=yes");
        assert_eq!(params_from_query(&q).err().unwrap(), "parameter progress invalid");
        let q = gofmt::parse_query("cid-version=1");
        assert!(params_from_query(&q).ok().unwrap().raw_leaves);
    }

    #[test]
    fn size_omitted_when_zero() {
        let c: cid::Cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".parse().unwrap();
        let ev = AddOut { name: vec![], cid: Some(c), bytes: 0, size: 0 };
        assert_eq!(event_json(&ev), b"{\"Name\":\"\",\"Hash\":\"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"}");
    }
}
