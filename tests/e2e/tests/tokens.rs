//! Writes with credentials the router holds only as digests, through Envoy with the filters
//! in front of the real cluster: the real Kubo CLI (`ipfs --api ... --api-auth bearer:TOKEN
//! add`) and kubo-rpc-client with `headers`. The configuration is what the deployer writes
//! into the policy (the SHA-256 of each of its tokens: deployer/tests/kube_apiserver.rs
//! checks `token create|revoke` write exactly that); revoking a token is that configuration
//! without its digest, which Envoy then refuses.

use std::path::Path;
use std::process::Command;

use e2e::envoy::{Envoy, Patch};
use edge_logic::router::{auth::pbkdf2_phc, bearer_digest};

const TOKEN: &str = "Zk2u3Q0oV9yX1bC5dE7fG8hJ4kL6mN0pR2sT4uW6xY8";
const OTHER: &str = "aB3cD5eF7gH9iJ1kL3mN5oP7qR9sT1uV3wX5yZ7aB9c";

fn edge(router: &serde_json::Value) -> Envoy {
    let p = &e2e::real::cluster().peers[0];
    let mut patches: Vec<Patch> = e2e::stack::patches(p.ports.proxy, p.ports.kubo_rpc, "{}", true)
        .into_iter()
        .filter(|x| !matches!(x, Patch::FilterConfig("router", _)))
        .collect();
    patches.push(Patch::FilterConfig("router", router.to_string()));
    Envoy::start("manifests/envoy/envoy.yaml", &patches)
}

/// `ipfs add` of `file` through the edge with Kubo's own CLI; `auth` as `--api-auth` takes it.
fn kubo_add(envoy: &Envoy, auth: Option<&str>, file: &Path) -> Result<String, String> {
    let bins = localcluster::Bins::locate().expect("Kubo");
    let repo = tempdir().join("repo");
    let mut cmd = Command::new(&bins.ipfs);
    // An empty IPFS_PATH: the client reads no configuration of its own.
    cmd.env("IPFS_PATH", &repo).arg("--api").arg(format!("/ip4/127.0.0.1/tcp/{}", envoy.port));
    if let Some(a) = auth {
        cmd.arg("--api-auth").arg(a);
    }
    let out = cmd.args(["add", "-Q"]).arg(file).output().expect("ipfs runs");
    let _ = std::fs::remove_dir_all(&repo);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn tempdir() -> std::path::PathBuf {
    let t = std::thread::current().id();
    let d = std::env::temp_dir().join(format!("ipfs-edge-tokens-{}-{t:?}", std::process::id()).replace(['(', ')'], ""));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// kubo-rpc-client (npm) adding `text` with an `authorization` header set through `headers`.
fn js_add(envoy: &Envoy, authorization: &str, text: &str) -> Result<String, String> {
    let dir = e2e::repo_root().join("tests/node");
    assert!(dir.join("node_modules/kubo-rpc-client").exists(), "tests/node/node_modules missing: ./x setup installs it");
    let script = "import { create } from 'kubo-rpc-client';\n\
        const [url, authorization, text] = process.argv.slice(1);\n\
        const client = create({ url, headers: { authorization } });\n\
        const r = await client.add(text);\n\
        console.log(r.cid.toString());";
    let out = Command::new("timeout")
        .args(["60", "node", "--input-type=module", "-e", script])
        .arg(format!("http://127.0.0.1:{}", envoy.port))
        .arg(authorization)
        .arg(text)
        .current_dir(&dir)
        .output()
        .expect("node");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn pinned(cid: &str) -> bool {
    e2e::real::cluster().pins().expect("REST /pins").iter().any(|p| p["cid"].as_str() == Some(cid))
}

#[test]
fn a_token_given_as_its_digest_adds_through_the_edge_until_revoked() {
    let dir = tempdir();
    let file = dir.join("hello.txt");
    std::fs::write(&file, format!("added with a digest-configured token ({})\n", std::process::id())).unwrap();
    let basic = pbkdf2_phc("op-password-1", b"0123456789abcdef", 1000);
    let config = serde_json::json!({"credentials": {
        "bearer_tokens": [bearer_digest(TOKEN), bearer_digest(OTHER)],
        "basic": {"op": basic},
    }});
    let envoy = edge(&config);

    let cid = kubo_add(&envoy, Some(&format!("bearer:{TOKEN}")), &file).unwrap_or_else(|e| panic!("add with the token: {e}\n{}", envoy.log()));
    assert!(cid.starts_with("Qm") || cid.starts_with("baf"), "{cid}");
    assert!(pinned(&cid), "{cid} is not pinned on the cluster");
    assert_eq!(kubo_add(&envoy, Some("basic:op:op-password-1"), &file).as_deref(), Ok(cid.as_str()), "Basic with a PBKDF2 hash");
    // No credential, a wrong one, the digest itself as the token: refused with 401.
    for auth in [None, Some(format!("bearer:{}", &TOKEN[1..])), Some(format!("bearer:{}", bearer_digest(TOKEN))), Some("basic:op:op-password-2".into())] {
        let e = kubo_add(&envoy, auth.as_deref(), &file).expect_err("refused");
        assert!(e.contains("401") || e.to_lowercase().contains("unauthorized"), "{auth:?}: {e}");
    }
    let js = js_add(&envoy, &format!("Bearer {OTHER}"), "kubo-rpc-client with headers\n").unwrap_or_else(|e| panic!("kubo-rpc-client: {e}"));
    assert!(pinned(&js), "{js}");
    assert!(js_add(&envoy, "Bearer not-a-configured-token-0123", "x").is_err());
    // Digests only: nothing for the filter to report.
    assert!(!envoy.log().contains("plain text"), "{}", envoy.log());
    drop(envoy);

    // Revoked: the configuration without its digest.
    let revoked = serde_json::json!({"credentials": {"bearer_tokens": [bearer_digest(OTHER)]}});
    let envoy = edge(&revoked);
    let e = kubo_add(&envoy, Some(&format!("bearer:{TOKEN}")), &file).expect_err("a revoked token is refused");
    assert!(e.contains("401") || e.to_lowercase().contains("unauthorized"), "{e}");
    assert!(js_add(&envoy, &format!("Bearer {OTHER}"), "still allowed\n").is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_text_credentials_still_work_and_are_reported_in_envoys_log() {
    let plain = "a-plain-text-token-0123456789";
    let envoy = edge(&serde_json::json!({"credentials": {"bearer_tokens": [plain], "basic": {"op": "op-password-1"}}}));
    let log = envoy.log();
    for key in ["credentials.bearer_tokens[0]", "credentials.basic.op"] {
        assert!(log.contains(&format!("router configuration key `{key}` holds a secret in plain text")), "no warning for {key}:\n{log}");
    }
    assert!(!log.contains(plain) && !log.contains("op-password-1"), "a secret in the log:\n{log}");
    let dir = tempdir();
    let file = dir.join("plain.txt");
    std::fs::write(&file, "plain\n").unwrap();
    assert!(kubo_add(&envoy, Some(&format!("bearer:{plain}")), &file).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
