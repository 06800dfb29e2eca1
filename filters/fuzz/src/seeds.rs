//! The seed corpus, built from the project's own tests and data: the
//! hostile-request corpus and its router configuration, the configuration
//! examples of the READMEs and values.env, and the shapes the unit tests of
//! filters/logic feed the parsers (multipart bodies, cluster events, add
//! queries, deployer config files).

use crate::{LinesInput, RouterInput};

const HOSTILE: &str = include_str!("../../logic/tests/corpus/hostile.jsonl");
const CORPUS_CONFIG: &str = include_str!("../../logic/tests/corpus/router-config.json");
const READMES: &[&str] = &[
    include_str!("../../../README.md"),
    include_str!("../../router/README.md"),
    include_str!("../../health/README.md"),
];
const VALUES_ENV: &str = include_str!("../../../manifests/kubernetes/values.env");

/// CIDs the logic's tests use (CIDv0 of "hello", the empty directory, a
/// CIDv1 raw leaf).
const V0: &str = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM";
const V0_DIR: &str = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";
const V1: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

pub fn for_target(target: &str) -> Vec<Vec<u8>> {
    match target {
        "multipart" => multipart(),
        "add_lines" => add_lines(),
        "add_flow" => add_flow(),
        "add_query" => add_query(),
        "router" => router(),
        "plugin_config" => plugin_config(),
        "deployer_config" => deployer_config(),
        other => panic!("no seeds for target {other}"),
    }
}

/// The hostile corpus as (method, target, headers).
fn hostile_rows() -> Vec<(String, String, Vec<(String, String)>)> {
    HOSTILE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).expect("hostile.jsonl row");
            let s = |k: &str| row[k].as_str().expect("string field").to_string();
            let headers = row["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|h| (h[0].as_str().unwrap_or_default().to_string(), h[1].as_str().unwrap_or_default().to_string()))
                .collect();
            (s("method"), s("target"), headers)
        })
        .collect()
}

fn multipart() -> Vec<Vec<u8>> {
    let ct = "multipart/form-data; boundary=XyZ";
    let bodies: Vec<Vec<u8>> = vec![
        // filters/logic/src/add/multipart.rs `body()`.
        [
            &b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir\"\r\nContent-Type: application/x-directory\r\n\r\n"[..],
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir%2Fa+b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            b"hello\r\n--XyZ not a boundary\r\n--Xy",
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\n",
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"./x/../y%zz\"\r\n\r\n",
            b"data\r\n--XyZ--\r\n",
        ]
        .concat(),
        // Kubo's client (go-ipfs-cmds): one unnamed file.
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--XyZ--\r\n".to_vec(),
        // kubo-rpc-client: a preamble, transport padding, quoted escapes.
        b"preamble\r\n--XyZ \t\r\nContent-Disposition: form-data; name=\"file-0\"; filename=\"a\\\"b.txt\"\r\n\r\nx\r\n--XyZ--".to_vec(),
        // A malformed first header block (Kubo's 500).
        b"--XyZ\r\nbroken\r\nContent-Type: text/plain\r\n\r\n\r\n--XyZ--\r\n".to_vec(),
        // A nested multipart/form-data directory.
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\"\r\nContent-Type: multipart/form-data; boundary=in\r\n\r\n--in\r\n\r\n--in--\r\n--XyZ--\r\n".to_vec(),
        // Bare LF line ends.
        b"--XyZ\nContent-Disposition: form-data; filename=\"lf\"\n\n\r\n--XyZ--\n".to_vec(),
    ];
    let mut out: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| {
            let mut v = format!("{ct}\n").into_bytes();
            v.extend_from_slice(b);
            v
        })
        .collect();
    // Content types filters/logic/src/add/multipart.rs tests read.
    for ct in ["Multipart/Form-Data;boundary=\"a b\"", "multipart/mixed; boundary=b", "multipart/form-data", "application/json"] {
        out.push(format!("{ct}\n--b\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\nx\r\n--b--\r\n").into_bytes());
    }
    out
}

fn add_lines() -> Vec<Vec<u8>> {
    let named = format!("{{\"Name\":\"f.bin\",\"Hash\":\"{V0}\",\"Size\":\"6\"}}\n");
    let unnamed = format!("{{\"Name\":\"\",\"Hash\":\"{V0}\",\"Size\":\"6\"}}\n");
    let dir = [
        "{\"Name\":\"a\",\"Bytes\":1}\n".to_string(),
        format!("{{\"Name\":\"d/a\",\"Hash\":\"{V0}\",\"Size\":\"9\"}}\n"),
        "{\"Name\":\"s/b\",\"Bytes\":262144}\n".to_string(),
        format!("{{\"Name\":\"d/s\",\"Hash\":\"{V1}\"}}\n"),
        format!("{{\"Name\":\"d\",\"Hash\":\"{V0_DIR}\",\"Size\":\"0\"}}\n"),
        "{\"Name\":\"\",\"Bytes\":0}\n".to_string(),
    ]
    .concat();
    let foreign = "{\"Message\":\"x\",\"Code\":0,\"Type\":\"error\"}\nnot an event\n\n{\"Name\":\"d\\u003c/a\",\"Bytes\":262144}\n{\"Name\":\"x\"}";
    let dir_parts: &[(bool, &str)] = &[(true, "d"), (false, "d/a"), (true, "d/s"), (false, "d/s/b"), (false, "g<")];
    vec![
        LinesInput::encode(0, 255, &[(false, "")], unnamed.as_bytes()),
        LinesInput::encode(2, 255, &[(false, "f.bin")], format!("{{\"Name\":\"\",\"Bytes\":262144}}\n{named}").as_bytes()),
        LinesInput::encode(2, 255, dir_parts, dir.as_bytes()),
        LinesInput::encode(2 | 8, 3, dir_parts, dir.as_bytes()),
        LinesInput::encode(1, 255, &[(false, ""), (false, "")], format!("{unnamed}{unnamed}{unnamed}").as_bytes()),
        LinesInput::encode(4, 255, &[(false, "")], unnamed.as_bytes()),
        LinesInput::encode(4 | 0x50, 255, &[], format!("{named}{unnamed}").as_bytes()),
        LinesInput::encode(0, 0, &[], foreign.as_bytes()),
        LinesInput::encode(8, 2, &[(false, "f.bin")], format!("{named}{}", &named[..20]).as_bytes()),
    ]
}

fn add_flow() -> Vec<Vec<u8>> {
    let dir_upload = [
        &b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d\"\r\nContent-Type: application/x-directory\r\n\r\n"[..],
        b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d%2Fa\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        b"hello\r\n--XyZ--\r\n",
    ]
    .concat();
    let dir_answer = format!(
        "{{\"Name\":\"a\",\"Bytes\":5}}\n{{\"Name\":\"d/a\",\"Hash\":\"{V0}\",\"Size\":\"13\"}}\n{{\"Name\":\"d\",\"Hash\":\"{V0_DIR}\"}}\n"
    );
    let unnamed_upload = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nhello\r\n--XyZ--\r\n".to_vec();
    let unnamed_answer = format!("{{\"Name\":\"\",\"Hash\":\"{V0}\",\"Size\":\"13\"}}\n");
    let ct = "content-type: multipart/form-data; boundary=XyZ";
    let seed = |head: &str, upload: &[u8], answer: &str| {
        let mut v = format!("{head}\n\n").into_bytes();
        v.extend_from_slice(upload);
        v.extend_from_slice(b"\n===\n");
        v.extend_from_slice(answer.as_bytes());
        v
    };
    vec![
        seed(&format!("path: /api/v0/add?progress=true\n{ct}\nmark: proxy"), &dir_upload, &dir_answer),
        seed(&format!("path: /api/v0/add?w=1&cid-base=base32\n{ct}\nmark: kubo"), &unnamed_upload, &unnamed_answer),
        seed(&format!("path: /api/v0/add\n{ct}\ncontent-length: 60\nlimit: 100"), &unnamed_upload, &unnamed_answer),
        seed(&format!("path: /api/v0/add?n=1\n{ct}\nlimit: 10"), &unnamed_upload, ""),
        seed(&format!("path: /api/v0/add?progress=1\n{ct}\nlimit: 40\nmax-line: 0"), &dir_upload, &dir_answer),
        seed(&format!("path: /api/v0/add\n{ct}"), b"--XyZ\r\nbroken\r\n\r\n\r\n--XyZ--\r\n", ""),
        seed(&format!("path: /api/v0/add\n{ct}"), b"--XyZ--\r\n", ""),
    ]
}

fn add_query() -> Vec<Vec<u8>> {
    // filters/logic/src/add/query.rs tests and the add-compat rows.
    let queries = [
        "?w=1&t&p=T&pin=0&r=tRuE", "?s=size-1024&H=f", "?cid-version=0x1", "", "?w=false&wrap-with-directory=true",
        "?replication-min=2&x=a%20b", "?stream-channels=false&cid-base=base32&progress=1", "?only-hash=true", "?n",
        "?only-hash=", "?n=TRUE", "?only-hash=0", "?p=yes", "?progress=1&progress=0", "?cid-version=",
        "?cid-base=nope", "?preserve-mtime=true", "?mode=0644", "?chunker=foo", "?s=size-0", "?cid-version=2",
        "?hash=Nope", "?hash=blake3&cid-version=0", "?hash=blake3", "?hash=sha2-256", "?chunker=rabin-16-32-64",
        "?chunker=rabin-min:16-avg:32-max:64", "?chunker=buzhash", "?s=size-99999999999999999999",
        "?upgrade-cidv0-in-output=true&cid-base=base58btc", "?cid-version=-0b1_0", "?a=1;b=2&c=%zz&d=x+y&&e",
        "?quiet&quieter=1&silent=f&raw-leaves&nocopy=0&hidden=1&trickle=t", "?cid-base=%F0%9F%9A%80",
    ];
    let ct = "multipart/form-data; boundary=b";
    let mut out: Vec<Vec<u8>> = queries.iter().map(|q| format!("/api/v0/add{q}\n{ct}").into_bytes()).collect();
    out.push(b"/api/v0/add?progress=bad\napplication/json".to_vec());
    for (_, target, _) in hostile_rows() {
        if target.starts_with("/api/v0/add") {
            out.push(format!("{target}\n{ct}").into_bytes());
        }
    }
    out
}

fn router() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = hostile_rows()
        .iter()
        .map(|(m, t, h)| {
            let h: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
            RouterInput::encode(m, t.as_bytes(), &h)
        })
        .collect();
    // filters/router/README.md's worked example.
    for (m, t) in [
        ("GET", "/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/wiki/"),
        ("POST", "/api/v0/cat?arg=QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM"),
        ("POST", "/api/v0/pin/add?arg=QmNotACid"),
        ("GET", "/pins"),
        ("POST", "/ipfs/gc"),
        ("GET", "/.well-known/acme-challenge/token"),
        ("DELETE", "/pins/ipfs/QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM/a"),
    ] {
        out.push(RouterInput::encode(m, t.as_bytes(), &[("authorization", b"Bearer corpus-token-0123456789")]));
    }
    out
}

/// Fenced JSON blocks of the READMEs.
fn readme_json() -> Vec<String> {
    let mut out = Vec::new();
    for r in READMES {
        let mut rest = *r;
        while let Some(at) = rest.find("```json\n") {
            let body = &rest[at + 8..];
            let end = body.find("```").unwrap_or(body.len());
            out.push(body[..end].to_string());
            rest = &body[end..];
        }
    }
    out
}

fn plugin_config() -> Vec<Vec<u8>> {
    let mut out: Vec<String> = vec![
        String::new(),
        "{}".into(),
        CORPUS_CONFIG.into(),
        // README.md (add_response) and the unit tests of each configuration.
        r#"{"server": "kubo/0.42.0", "max_line_bytes": 16384}"#.into(),
        r#"{"max_line_bytes":1024,"server":"kubo/0.40.0","only_hash_backend":"","max_upload_bytes":10737418240,"refuse_unsupported_options":false}"#.into(),
        r#"{"preset":"none","rpc":{"version":"public"},"rest":{"POST /peers":"credential"},"gateway":"deny","health_paths":["/","/healthz"],"platform_paths":["/.well-known/acme-challenge/","/status"],"forward_authorization":true}"#.into(),
        r#"{"preset":"field-notes","kubo_direct":false,"credentials":{"bearer_tokens":["0123456789abcdef"],"basic":{"u":"password"}}}"#.into(),
        // Credentials as digests (the deployer's form; filters/logic/src/router/auth.rs).
        format!(
            r#"{{"credentials":{{"bearer_tokens":["{}","plain-token-0123456789"],"basic":{{"op":"{}","u":"password"}}}}}}"#,
            edge_logic::router::bearer_digest("a-token-the-deployer-made"),
            edge_logic::router::auth::pbkdf2_phc("op-password", b"0123456789abcdef", 10)
        ),
        r#"{"credentials":{"bearer_tokens":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],"basic":{"x":"$pbkdf2-sha256$i=1,l=16$c2FsdHNhbHQ$VazBo5bTkJfM4MqNp0lT8A"}}}"#.into(),
        r#"{"paths":["/"],"answer":"all","active":{"checks":[{"cluster":"c","path":"/","method":"GET","authority":"a","expect_status":[204]}]}}"#.into(),
    ];
    out.extend(readme_json());
    out.extend(VALUES_ENV.lines().filter_map(|l| l.strip_prefix("FILTER_CONFIG_")).filter_map(|l| l.split_once('=')).map(|(_, v)| v.to_string()));
    out.into_iter().map(String::into_bytes).collect()
}

fn deployer_config() -> Vec<Vec<u8>> {
    // deployer/src/config.rs tests, and a file with every key.
    [
        "domain: file.example.org\nreplicas: 5\nmesh: istio\n",
        "domian: x.example.org\n",
        "",
        "name: edge\nnamespace: ipfs\ndomain: ipfs.example.org\nacme-email: ops@example.org\nacme: production\nreplicas: 3\n\
         storage-class: fast.ssd\nkubo-storage-size: 500Gi\ncluster-storage-size: 10Gi\nkubo-image: docker.io/ipfs/kubo:v0.42.0\n\
         cluster-image: docker.io/ipfs/ipfs-cluster:v1.1.6\nmesh: envoy-gateway\nswarm-service-type: NodePort\n\
         filters-dir: target/wasm32-wasip1/release\nrate-limit-per-minute: 100\n",
        "{\"domain\": \"a.example.org\", \"replicas\": 64}",
        "replicas: -1\n",
        "acme: Staging\n",
        "config: other.yaml\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}
