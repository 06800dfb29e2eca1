//! Router logic: configuration, classification, credentials, wire format.
//! Runs on the host (`cargo test -p edge-logic`) and on wasm32 under
//! wasm-bindgen-test (see filters/logic/tests/corpus/README.md).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edge_logic::backend::Backend;
use edge_logic::kubo;
use edge_logic::router::{self, auth::base64_encode, classify, parse_target, Access, Decision, Policy, Request};

/// The error JSON a refusal with `status` carries, as text.
fn error_json(status: u16, message: &str) -> String {
    String::from_utf8(kubo::error_body(router::error_code(status), message)).unwrap()
}

const CID0: &str = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM";
const CID1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
const TOKEN: &str = "test-token-0123456789";

fn policy(json: &str) -> Policy {
    Policy::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn authed() -> Policy {
    policy(&format!(
        r#"{{"credentials":{{"bearer_tokens":["{TOKEN}"],"basic":{{"alice":"wonderland-42"}}}}}}"#
    ))
}

fn decide(p: &Policy, method: &str, path: &str, headers: &[(&str, &str)]) -> Decision {
    let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    classify(p, &Request { method, path: path.as_bytes(), headers: &h })
}

fn backend(p: &Policy, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<Backend> {
    decide(p, method, path, headers).backend()
}

fn status(p: &Policy, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
    decide(p, method, path, headers).status()
}

#[test]
fn empty_configuration_is_the_read_only_preset() {
    let p = policy("");
    let q = policy("{}");
    assert_eq!(p.rpc, q.rpc);
    assert_eq!(p.rpc.get("cat"), Some(&Access::Public));
    assert_eq!(p.rpc.get("pin/add"), Some(&Access::Credential));
    assert_eq!(p.rpc.get("shutdown"), None);
    assert!(p.kubo_direct);
    assert_eq!(p.health_paths, vec!["/".to_string()]);
    assert!(p.credentials.is_empty());
}

#[test]
fn unknown_key_is_refused_naming_it() {
    let e = Policy::from_json(br#"{"presets":"none"}"#).unwrap_err();
    assert!(e.contains("presets"), "{e}");
    let e = Policy::from_json(br#"{"credentials":{"tokens":[]}}"#).unwrap_err();
    assert!(e.contains("credentials") && e.contains("tokens"), "{e}");
}

#[test]
fn wrong_type_is_refused_naming_the_key() {
    let e = Policy::from_json(br#"{"kubo_direct":"yes"}"#).unwrap_err();
    assert!(e.contains("`kubo_direct`"), "{e}");
    let e = Policy::from_json(br#"{"rpc":{"cat":"open"}}"#).unwrap_err();
    assert!(e.contains("rpc.cat"), "{e}");
    let e = Policy::from_json(br#"{"credentials":{"basic":{"bob":7}}}"#).unwrap_err();
    assert!(e.contains("credentials.basic.bob"), "{e}");
    assert!(Policy::from_json(b"[1]").is_err());
    assert!(Policy::from_json(b"{").is_err());
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let e = Policy::from_json(br#"{"rpc":{"Pin/Add":"public"}}"#).unwrap_err();
    assert!(e.contains("rpc.Pin/Add"), "{e}");
    let e = Policy::from_json(br#"{"rest":{"GET /nope":"public"}}"#).unwrap_err();
    assert!(e.contains("rest.GET /nope"), "{e}");
    let e = Policy::from_json(br#"{"credentials":{"bearer_tokens":["short"]}}"#).unwrap_err();
    assert!(e.contains("credentials.bearer_tokens[0]"), "{e}");
    // The secret itself is never echoed.
    let e = Policy::from_json(br#"{"credentials":{"basic":{"bob":"secret"}}}"#).unwrap_err();
    assert!(e.contains("credentials.basic.bob") && !e.contains("secret\""), "{e}");
    let e = Policy::from_json(br#"{"health_paths":["/a/../b"]}"#).unwrap_err();
    assert!(e.contains("health_paths[0]"), "{e}");
    assert!(!format!("{:?}", authed()).contains(TOKEN));
}

#[test]
fn rpc_reads_are_public_and_go_to_kubo_directly() {
    let p = policy("");
    assert_eq!(backend(&p, "POST", &format!("/api/v0/cat?arg={CID0}"), &[]), Some(Backend::Kubo));
    assert_eq!(backend(&p, "POST", "/api/v0/version", &[]), Some(Backend::Kubo));
    assert_eq!(backend(&p, "POST", "/api/v0/pin/ls", &[]), Some(Backend::Proxy));
    assert_eq!(backend(&p, "POST", "/api/v0/repo/stat", &[]), Some(Backend::Proxy));
    let p = policy(r#"{"kubo_direct":false}"#);
    assert_eq!(backend(&p, "POST", "/api/v0/version", &[]), Some(Backend::Proxy));
}

#[test]
fn rpc_only_accepts_post_and_options() {
    let p = policy("");
    let d = decide(&p, "GET", "/api/v0/version", &[]);
    match d {
        Decision::Refuse(r) => {
            assert_eq!(r.status, 405);
            assert_eq!(r.allow, Some("OPTIONS, POST"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(backend(&p, "OPTIONS", "/api/v0/pin/add", &[]), Some(Backend::Proxy));
    assert_eq!(status(&p, "PUT", "/api/v0/pin/add", &[]), Some(405));
}

#[test]
fn writes_need_a_credential() {
    let p = authed();
    let path = format!("/api/v0/pin/add?arg={CID1}");
    assert_eq!(status(&p, "POST", &path, &[]), Some(401));
    assert_eq!(status(&p, "POST", &path, &[("authorization", "Bearer wrong-token-0123456789")]), Some(401));
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(backend(&p, "POST", &path, &[("authorization", &bearer)]), Some(Backend::Proxy));
    let lower = format!("bearer   {TOKEN}");
    assert_eq!(backend(&p, "POST", &path, &[("authorization", &lower)]), Some(Backend::Proxy));
    let basic = format!("Basic {}", base64_encode(b"alice:wonderland-42"));
    assert_eq!(backend(&p, "POST", &path, &[("authorization", &basic)]), Some(Backend::Proxy));
    let wrong = format!("Basic {}", base64_encode(b"alice:wonderland-43"));
    assert_eq!(status(&p, "POST", &path, &[("authorization", &wrong)]), Some(401));
    // A token sent as Basic, or a prefix of it, is not accepted.
    assert_eq!(status(&p, "POST", &path, &[("authorization", &format!("Basic {TOKEN}"))]), Some(401));
    assert_eq!(status(&p, "POST", &path, &[("authorization", &bearer[..bearer.len() - 1])]), Some(401));
    assert_eq!(status(&p, "POST", &path, &[("authorization", &format!("{bearer}0"))]), Some(401));
    // Two Authorization headers: refused even if one is right.
    assert_eq!(
        status(&p, "POST", &path, &[("authorization", &bearer), ("authorization", "Bearer x")]),
        Some(401)
    );
    // Without configured credentials, credential routes stay closed.
    assert_eq!(status(&policy(""), "POST", &path, &[("authorization", &bearer)]), Some(401));
}

#[test]
fn digests_open_writes_as_the_secrets_they_stand_for() {
    // What the deployer writes: the SHA-256 of its token, a PBKDF2 hash for
    // a Basic user. Nothing in the configuration is usable as a credential.
    let hash = router::auth::pbkdf2_phc("wonderland-42", b"0123456789abcdef", 1000);
    let json = serde_json::json!({"credentials": {
        "bearer_tokens": [router::bearer_digest(TOKEN)],
        "basic": {"alice": hash},
    }})
    .to_string();
    let p = policy(&json);
    assert!(p.credentials.plain_text().is_empty());
    let path = format!("/api/v0/pin/add?arg={CID1}");
    assert_eq!(backend(&p, "POST", &path, &[("authorization", &format!("Bearer {TOKEN}"))]), Some(Backend::Proxy));
    let basic = format!("Basic {}", base64_encode(b"alice:wonderland-42"));
    assert_eq!(backend(&p, "POST", &path, &[("authorization", &basic)]), Some(Backend::Proxy));
    assert_eq!(status(&p, "POST", &path, &[]), Some(401));
    let digest = router::bearer_digest(TOKEN);
    assert_eq!(status(&p, "POST", &path, &[("authorization", &format!("Bearer {digest}"))]), Some(401));
    let as_hash = format!("Basic {}", base64_encode(format!("alice:{hash}").as_bytes()));
    assert_eq!(status(&p, "POST", &path, &[("authorization", &as_hash)]), Some(401));
    // The plain-text forms still work, and are named for the warning.
    let p = authed();
    assert_eq!(p.credentials.plain_text(), ["bearer_tokens[0]", "basic.alice"]);
    let w = router::plain_text_warning("bearer_tokens[0]");
    assert!(w.contains("credentials.bearer_tokens[0]") && w.contains("sha256:"), "{w}");
    assert!(!w.contains(TOKEN));
}

#[test]
fn credentials_do_not_unlock_commands_off_the_allowlist() {
    let p = authed();
    let bearer = format!("Bearer {TOKEN}");
    for cmd in ["shutdown", "config", "key/gen", "block/rm", "files/write", "version/deps", "swarm/connect"] {
        assert_eq!(status(&p, "POST", &format!("/api/v0/{cmd}"), &[("authorization", &bearer)]), Some(403), "{cmd}");
    }
}

#[test]
fn path_arguments_only_when_they_are_cids() {
    let p = authed();
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(backend(&p, "POST", &format!("/api/v0/pin/add/{CID0}"), &[("authorization", &bearer)]), Some(Backend::Proxy));
    assert_eq!(backend(&p, "POST", &format!("/api/v0/cat/{CID1}"), &[]), Some(Backend::Kubo));
    // `version` is public, `version/deps` is not: a non-CID last segment is a subcommand.
    assert_eq!(status(&p, "POST", "/api/v0/version/deps", &[]), Some(403));
    assert_eq!(status(&p, "POST", "/api/v0/pin/remote/service/add", &[("authorization", &bearer)]), Some(403));
}

#[test]
fn every_arg_is_checked() {
    let p = authed();
    let bearer = format!("Bearer {TOKEN}");
    let a = [("authorization", bearer.as_str())];
    assert_eq!(status(&p, "POST", "/api/v0/pin/add?arg=QmNotACid", &a), Some(400));
    assert_eq!(status(&p, "POST", &format!("/api/v0/pin/add?arg={CID0}&arg=nope"), &a), Some(400));
    assert_eq!(status(&p, "POST", &format!("/api/v0/pin/rm/{CID0}?arg=nope"), &a), Some(400));
    assert_eq!(backend(&p, "POST", &format!("/api/v0/pin/add?arg=/ipfs/{CID0}/a/b&arg={CID1}"), &a), Some(Backend::Proxy));
    assert_eq!(status(&p, "POST", &format!("/api/v0/pin/add?arg=/ipfs/{CID0}/../x"), &a), Some(400));
    assert_eq!(backend(&p, "POST", "/api/v0/pin/add?arg=/ipns/example.org", &a), Some(Backend::Proxy));
    assert_eq!(status(&p, "POST", &format!("/api/v0/cat?arg=%2Fipfs%2F{CID0}&arg=bad"), &[]), Some(400));
    // Percent-encoded key names are the same key to Go.
    assert_eq!(status(&p, "POST", "/api/v0/cat?%61rg=bad", &[]), Some(400));
    // Kubo's reading: `ARG` is an unknown option, not an argument.
    assert_eq!(backend(&p, "POST", &format!("/api/v0/cat?arg={CID0}&ARG=zzz"), &[]), Some(Backend::Kubo));
}

#[test]
fn unauthenticated_bad_args_get_401_not_a_cid_oracle() {
    let p = authed();
    assert_eq!(status(&p, "POST", "/api/v0/pin/add?arg=bad", &[]), Some(401));
}

#[test]
fn normalisation_cannot_be_used_to_bypass() {
    let p = authed();
    for (path, want) in [
        ("/api/v0//shutdown", 403),
        ("/api/v0/shutdown/", 403),
        ("/api/v0/SHUTDOWN", 403),
        ("/API/V0/shutdown", 404),
        ("/api/v0/%73hutdown", 403),
        ("/api/v0/version/../shutdown", 400),
        ("/api/v0/version/%2e%2e/shutdown", 400),
        ("/api/v0/version/%2E%2e/shutdown", 400),
        ("/api/v0/./shutdown", 400),
        ("/api/v0%2Fshutdown", 400),
        ("/api/v0/key%2fgen", 400),
        ("/api/v0/shutdown;x=1", 403),
        ("/api/v0;x/shutdown", 404),
        ("/api\\v0\\shutdown", 400),
        ("/api/v0/shut%5Cdown", 400),
        ("/api/v0/shutdown%00", 400),
        ("/api/v0/shut%zzdown", 400),
        ("/api/v0/shutdown#x", 400),
        ("http://evil.example/api/v0/shutdown", 403),
        ("HTTPS://evil.example:443/api/v0/shutdown?x", 403),
        ("*", 400),
        ("api/v0/shutdown", 400),
        ("/api/v0/cat?arg=a;arg=b", 400),
    ] {
        assert_eq!(status(&p, "POST", path, &[]), Some(want), "{path}");
    }
    // The same tricks on an allowed command still land on its backend.
    assert_eq!(backend(&p, "POST", "/api/v0//version/", &[]), Some(Backend::Kubo));
    assert_eq!(backend(&p, "POST", "/api/v0/%76ersion", &[]), Some(Backend::Kubo));
    assert_eq!(backend(&p, "POST", "http://h/api/v0/version", &[]), Some(Backend::Kubo));
}

#[test]
fn methods_are_exact_and_overrides_refused() {
    let p = policy("");
    assert_eq!(status(&p, "post", "/api/v0/version", &[]), Some(400));
    assert_eq!(status(&p, "PoST", "/api/v0/version", &[]), Some(400));
    for h in ["x-http-method-override", "X-HTTP-Method", "x-method-override"] {
        assert_eq!(status(&p, "POST", "/api/v0/version", &[(h, "POST")]), Some(400), "{h}");
        assert_eq!(status(&p, "GET", &format!("/ipfs/{CID0}"), &[(h, "DELETE")]), Some(400), "{h}");
    }
}

#[test]
fn gateway_paths() {
    let p = policy("");
    assert_eq!(backend(&p, "GET", &format!("/ipfs/{CID0}"), &[]), Some(Backend::Gateway));
    assert_eq!(backend(&p, "HEAD", &format!("/ipfs/{CID1}/a/b.txt?format=raw"), &[]), Some(Backend::Gateway));
    assert_eq!(backend(&p, "GET", &format!("/ipfs/{CID1}/"), &[]), Some(Backend::Gateway));
    assert_eq!(backend(&p, "GET", "/ipns/docs.ipfs.tech/x", &[]), Some(Backend::Gateway));
    assert_eq!(status(&p, "GET", "/ipfs/QmNope", &[]), Some(400));
    assert_eq!(status(&p, "GET", "/ipfs/", &[]), Some(400));
    assert_eq!(status(&p, "GET", "/ipns/a%20b", &[]), Some(400));
    assert_eq!(status(&p, "POST", &format!("/ipfs/{CID0}"), &[]), Some(405));
    assert_eq!(status(&p, "GET", &format!("/ipfs/{CID0}/../../api/v0/shutdown"), &[]), Some(400));
    assert_eq!(status(&p, "GET", "/IPFS/bafkqaaa", &[]), Some(404));
    let p = policy(r#"{"gateway":"deny"}"#);
    assert_eq!(status(&p, "GET", &format!("/ipfs/{CID0}"), &[]), Some(403));
}

#[test]
fn ipfs_gc_collision_is_resolved_by_method() {
    let p = authed();
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(backend(&p, "POST", "/ipfs/gc", &[("authorization", &bearer)]), Some(Backend::Rest));
    assert_eq!(status(&p, "POST", "/ipfs/gc", &[]), Some(401));
    // A read of /ipfs/gc is the gateway's, and "gc" is no CID.
    assert_eq!(status(&p, "GET", "/ipfs/gc", &[]), Some(400));
    assert_eq!(status(&p, "PUT", "/ipfs/gc", &[]), Some(405));
}

#[test]
fn rest_routes() {
    let p = authed();
    let bearer = format!("Bearer {TOKEN}");
    let a = [("authorization", bearer.as_str())];
    for path in ["/id", "/version", "/peers", "/pins", "/allocations", "/health", "/health/graph", "/monitor/metrics/freespace"] {
        assert_eq!(backend(&p, "GET", path, &[]), Some(Backend::Rest), "{path}");
    }
    assert_eq!(backend(&p, "GET", &format!("/pins/{CID0}"), &[]), Some(Backend::Rest));
    assert_eq!(status(&p, "GET", "/pins/nope", &[]), Some(400));
    assert_eq!(status(&p, "POST", &format!("/pins/{CID0}"), &[]), Some(401));
    assert_eq!(backend(&p, "POST", &format!("/pins/{CID0}"), &a), Some(Backend::Rest));
    assert_eq!(backend(&p, "DELETE", &format!("/pins/ipfs/{CID0}/x"), &a), Some(Backend::Rest));
    assert_eq!(status(&p, "DELETE", "/pins/ipfs/nope/x", &a), Some(400));
    assert_eq!(backend(&p, "POST", "/pins/recover", &a), Some(Backend::Rest));
    assert_eq!(status(&p, "POST", "/peers", &a), Some(403));
    assert_eq!(status(&p, "DELETE", "/peers/12D3KooWJqfyU6rTvamvmPY3ajvurGmS1a9Z1XhsRZVpJeJfb8uS", &a), Some(403));
    assert_eq!(status(&p, "POST", "/token", &a), Some(403));
    match decide(&p, "PUT", "/pins", &[]) {
        Decision::Refuse(r) => assert_eq!((r.status, r.allow), (405, Some("GET, OPTIONS"))),
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&p, "GET", "/debug/pprof", &[]), Some(404));
    assert_eq!(status(&p, "GET", "/ID", &[]), Some(404));
    let p = policy(r#"{"rest":{"GET /pins":"credential","POST /peers":"credential"}}"#);
    assert_eq!(status(&p, "GET", "/pins", &[]), Some(401));
}

#[test]
fn health_paths() {
    let p = policy("");
    assert_eq!(backend(&p, "GET", "/", &[]), Some(Backend::Health));
    assert_eq!(backend(&p, "HEAD", "//?probe=1", &[]), Some(Backend::Health));
    assert_eq!(status(&p, "POST", "/", &[]), Some(405));
    let p = policy(r#"{"health_paths":["/healthz"]}"#);
    assert_eq!(backend(&p, "GET", "/healthz", &[]), Some(Backend::Health));
    assert_eq!(status(&p, "GET", "/", &[]), Some(404));
}

#[test]
fn platform_paths_are_left_unmarked() {
    let p = policy("");
    let acme = "/.well-known/acme-challenge/Xr4-token_9";
    for method in ["GET", "HEAD", "POST"] {
        assert_eq!(decide(&p, method, acme, &[]), Decision::Platform, "{method}");
    }
    // The same normalisation as every other rule: merged slashes and
    // decoded unreserved letters still point inside ...
    assert_eq!(decide(&p, "GET", "//.well-known//acme-challenge/t?x=1", &[]), Decision::Platform);
    assert_eq!(decide(&p, "GET", "/.well-known/%61cme-challenge/t", &[]), Decision::Platform);
    assert_eq!(decide(&p, "GET", "http://h/.well-known/acme-challenge/t", &[]), Decision::Platform);
    // ... and nothing that spells its way out of it passes.
    for path in [
        "/.well-known/acme-challenge/../../api/v0/shutdown",
        "/.well-known/acme-challenge/%2e%2e/api/v0/shutdown",
        "/.well-known/acme-challenge/%2E%2E%2Fapi%2Fv0%2Fshutdown",
        "/.well-known/acme-challenge%2Ft",
        "/.well-known/acme-challenge/t\\..\\x",
    ] {
        assert_eq!(status(&p, "GET", path, &[]), Some(400), "{path}");
    }
    // Segment-wise: a neighbour, the prefix itself and a bad method are the
    // router's as before.
    assert_eq!(status(&p, "GET", "/.well-known/acme-challenge-x/t", &[]), Some(404));
    assert_eq!(status(&p, "GET", "/.well-known/acme-challenge/", &[]), Some(404));
    assert_eq!(status(&p, "GET", "/.well-known/acme-challengeX", &[]), Some(404));
    assert_eq!(status(&p, "get", acme, &[]), Some(400));
    assert_eq!(status(&p, "GET", acme, &[("x-http-method-override", "POST")]), Some(400));
    // Configurable; `[]` turns it off; a prefix without a trailing slash
    // covers itself too.
    let off = policy(r#"{"platform_paths": []}"#);
    assert_eq!(status(&off, "GET", acme, &[]), Some(404));
    let own = policy(r#"{"platform_paths": ["/solver", "/x/y/"]}"#);
    assert_eq!(decide(&own, "GET", "/solver", &[]), Decision::Platform);
    assert_eq!(decide(&own, "GET", "/solver/a", &[]), Decision::Platform);
    assert_eq!(decide(&own, "GET", "/x/y/z", &[]), Decision::Platform);
    assert_eq!(status(&own, "GET", "/x/y", &[]), Some(404));
    assert_eq!(status(&own, "GET", acme, &[]), Some(404));
    for bad in ["/", "", "solver", "/a/../b/", "/a//b", "/a%2fb", "/a?x", "/a b", "/é"] {
        let e = Policy::from_json(format!(r#"{{"platform_paths": ["/ok", "{bad}"]}}"#).as_bytes()).unwrap_err();
        assert!(e.contains("platform_paths[1]"), "{bad}: {e}");
    }
}

#[test]
fn field_notes_preset() {
    let p = policy(r#"{"preset":"field-notes"}"#);
    assert_eq!(backend(&p, "POST", "/api/v0/add", &[]), Some(Backend::Proxy));
    assert_eq!(backend(&p, "POST", "/api/v0/dag/put", &[]), Some(Backend::Proxy));
    assert_eq!(backend(&p, "POST", "/api/v0/block/put", &[]), Some(Backend::Proxy));
    assert_eq!(backend(&p, "POST", &format!("/api/v0/block/get?arg={CID0}"), &[]), Some(Backend::Kubo));
    assert_eq!(backend(&p, "POST", &format!("/api/v0/object/data?arg={CID0}"), &[]), Some(Backend::Kubo));
    assert_eq!(status(&p, "POST", "/api/v0/block/rm", &[]), Some(403));
    assert_eq!(status(&p, "POST", "/api/v0/cat", &[]), Some(403));
    assert_eq!(status(&p, "POST", "/api/v0/pin/add", &[]), Some(403));
    // Entries on top of a preset, and `deny` removing one.
    let p = policy(r#"{"preset":"field-notes","rpc":{"add":"deny","cat":"public"}}"#);
    assert_eq!(status(&p, "POST", "/api/v0/add", &[]), Some(403));
    assert_eq!(backend(&p, "POST", "/api/v0/cat", &[]), Some(Backend::Kubo));
    let p = policy(r#"{"preset":"none"}"#);
    assert_eq!(status(&p, "POST", "/api/v0/version", &[]), Some(403));
}

#[test]
fn authorization_is_stripped_unless_forwarding_is_configured() {
    let p = policy("");
    assert_eq!(
        decide(&p, "GET", "/id", &[]),
        Decision::Route { backend: Backend::Rest, strip_authorization: true, credential: false }
    );
    let p = policy(r#"{"forward_authorization":true}"#);
    assert_eq!(
        decide(&p, "GET", "/id", &[]),
        Decision::Route { backend: Backend::Rest, strip_authorization: false, credential: false }
    );
}

#[test]
fn kubo_error_json_matches_go_ipfs_cmds() {
    assert_eq!(
        error_json(403, "no \"way\""),
        "{\"Message\":\"no \\\"way\\\"\",\"Code\":4,\"Type\":\"error\"}\n"
    );
    assert_eq!(error_json(400, "x"), "{\"Message\":\"x\",\"Code\":1,\"Type\":\"error\"}\n");
    assert_eq!(error_json(405, "x"), "{\"Message\":\"x\",\"Code\":0,\"Type\":\"error\"}\n");
}

#[test]
fn refusal_headers() {
    let p = authed();
    let Decision::Refuse(r) = decide(&p, "POST", "/api/v0/add", &[]) else { panic!() };
    let h = router::refusal_headers(&p, &r);
    assert!(h.contains(&("content-type", "application/json".to_string())));
    let www = h.iter().find(|(k, _)| *k == "www-authenticate").expect("challenge");
    assert!(www.1.starts_with("Bearer realm=\"ipfs-edge\", Basic"), "{}", www.1);
    let Decision::Refuse(r) = decide(&p, "GET", "/api/v0/add", &[]) else { panic!() };
    let h = router::refusal_headers(&p, &r);
    assert!(h.contains(&("allow", "OPTIONS, POST".to_string())));
}

#[test]
fn target_parsing() {
    let t = parse_target(b"/a//b/?arg=1&arg=x%2By+z&flag&=v").unwrap();
    assert_eq!(t.segments, vec!["a", "b"]);
    assert!(t.trailing_slash);
    assert_eq!(t.query_values("arg").collect::<Vec<_>>(), vec!["1", "x+y z"]);
    assert_eq!(t.query_values("flag").collect::<Vec<_>>(), vec![""]);
    assert_eq!(parse_target(b"http://h").unwrap().canonical_path(), "/");
    assert_eq!(parse_target(b"http://h?x=1").unwrap().query_values("x").next(), Some("1"));
    assert!(parse_target(b"/caf\xc3\xa9").is_err());
    assert_eq!(parse_target(b"/caf%C3%A9").unwrap().segments, vec!["café"]);
    assert!(parse_target(b"/%FF").is_err());
    assert!(parse_target(b"/a?x=%").is_err());
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
        assert_eq!(base64_encode(i.as_bytes()), o);
    }
}

#[test]
fn rpc_method_refusal_is_kubos_own_answer() {
    // Kubo (go-ipfs-cmds http.Error) answers a GET on the RPC API in plain
    // text, not with its error JSON: the edge answers the same bytes.
    let p = policy("");
    let Decision::Refuse(r) = decide(&p, "GET", "/api/v0/add", &[]) else { panic!() };
    let (h, body) = router::refusal_response(&p, &r);
    assert_eq!(body, b"405 - Method Not Allowed\n");
    let names: Vec<&str> = h.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["allow", "content-type", "vary", "x-content-type-options"]);
    assert!(h.contains(&("content-type", "text/plain; charset=utf-8".to_string())));
    // Other refusals keep the JSON.
    let Decision::Refuse(r) = decide(&p, "POST", "/api/v0/shutdown", &[]) else { panic!() };
    let (h, body) = router::refusal_response(&p, &r);
    assert!(body.starts_with(b"{\"Message\":"), "{body:?}");
    assert!(h.contains(&("content-type", "application/json".to_string())));
    let Decision::Refuse(r) = decide(&p, "POST", "/ipfs/bafkqaaa", &[]) else { panic!() };
    assert!(router::refusal_response(&p, &r).1.starts_with(b"{\"Message\":\"405"));
}

#[test]
fn kubo_error_json_escapes_like_go() {
    assert_eq!(
        error_json(403, "<a&b>\u{2028}"),
        "{\"Message\":\"\\u003ca\\u0026b\\u003e\\u2028\",\"Code\":4,\"Type\":\"error\"}\n"
    );
}

/// The worked example of filters/router/README.md, row by row.
#[test]
fn readme_worked_example() {
    let p = policy(
        r#"{
  "preset": "read-only",
  "rpc": { "pin/ls": "credential", "repo/gc": "deny", "dag/export": "public" },
  "rest": { "GET /pins": "credential", "GET /allocations": "credential" },
  "kubo_direct": false,
  "credentials": {
    "bearer_tokens": ["ci-4b1d0c0ffee5eed5a1t"],
    "basic": { "operator": "correct horse battery staple" }
  }
}"#,
    );
    let tok = [("authorization", "Bearer ci-4b1d0c0ffee5eed5a1t")];
    let op = format!("Basic {}", base64_encode(b"operator:correct horse battery staple"));
    let op = [("authorization", op.as_str())];
    assert_eq!(backend(&p, "GET", &format!("/ipfs/{CID1}/wiki/"), &[]), Some(Backend::Gateway));
    assert_eq!(backend(&p, "POST", &format!("/api/v0/cat?arg={CID0}"), &[]), Some(Backend::Proxy));
    assert_eq!(status(&p, "POST", &format!("/api/v0/pin/add?arg={CID0}"), &[]), Some(401));
    assert_eq!(backend(&p, "POST", &format!("/api/v0/pin/add?arg={CID0}"), &tok), Some(Backend::Proxy));
    assert_eq!(status(&p, "POST", "/api/v0/pin/add?arg=QmNotACid", &tok), Some(400));
    assert_eq!(status(&p, "POST", "/api/v0/repo/gc", &tok), Some(403));
    assert_eq!(status(&p, "POST", "/api/v0/shutdown", &tok), Some(403));
    assert_eq!(status(&p, "GET", "/pins", &[]), Some(401));
    assert_eq!(backend(&p, "GET", "/pins", &op), Some(Backend::Rest));
    assert_eq!(backend(&p, "POST", "/ipfs/gc", &op), Some(Backend::Rest));
    assert_eq!(status(&p, "GET", "/api/v0/version", &[]), Some(405));
    assert_eq!(backend(&p, "GET", "/", &[]), Some(Backend::Health));
}

/// The digest example of filters/router/README.md ("Credentials"): the same
/// operator as the worked example, and the token it was made from.
#[test]
fn readme_digest_example() {
    let readme = include_str!("../../router/README.md");
    let at = readme.find("{\"credentials\": {\n  \"bearer_tokens\": [\"sha256:").expect("the digest example");
    let end = at + readme[at..].find("\n```").expect("its end");
    let p = policy(&readme[at..end]);
    assert!(p.credentials.plain_text().is_empty());
    let path = format!("/api/v0/pin/add?arg={CID1}");
    let op = format!("Basic {}", base64_encode(b"operator:correct horse battery staple"));
    assert_eq!(backend(&p, "POST", &path, &[("authorization", &op)]), Some(Backend::Proxy));
    let tok = "Bearer an-example-token-do-not-use-0123456789";
    assert_eq!(backend(&p, "POST", &path, &[("authorization", tok)]), Some(Backend::Proxy));
}
