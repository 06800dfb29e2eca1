//! The exit codes that need no API server (deployer/README.md, "Exit codes"): the built
//! binary run as a user would. 6-9 are provoked against the real kube-apiserver
//! (tests/kube_apiserver.rs); 10 there too (`down --purge` unconfirmed).

use std::path::Path;
use std::process::{Command, Output};

fn deployer(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_deployer")).args(args).env_remove("KUBECONFIG").output().unwrap();
    eprintln!("$ deployer {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

fn filters(dir: &Path) {
    for f in ["health", "router", "add_response"] {
        std::fs::write(dir.join(format!("{f}.wasm")), format!("\0asm\x01\0\0\0{f}")).unwrap();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn render_succeeds_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    filters(dir.path());
    let out = deployer(&["render", "--filters-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: StatefulSet"));
}

#[test]
fn a_bad_value_or_config_file_is_usage_exit_2() {
    let out = deployer(&["render", "--domain", "not a host"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("DOMAIN"), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "replicas: lots\n").unwrap();
    let out = deployer(&["render", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn missing_filters_are_local_files_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = deployer(&["render", "--filters-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("build the filters"), "{}", stderr(&out));
}

fn kubeconfig(dir: &Path, server: &str) -> String {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: k, cluster: {{server: \"{server}\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n"
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn no_kubeconfig_or_context_is_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let out = deployer(&["status", "--kubeconfig", dir.path().join("none").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let kc = kubeconfig(dir.path(), "http://127.0.0.1:1");
    let out = deployer(&["status", "--kubeconfig", &kc, "--context", "other"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"other\""), "{}", stderr(&out));
}

#[test]
fn a_server_nobody_listens_on_is_unreachable_exit_5() {
    // A port of our own, closed again: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"));
    let start = std::time::Instant::now();
    let out = deployer(&["status", "--kubeconfig", &kc]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("cannot reach the cluster at http://127.0.0.1:{port}")), "{}", stderr(&out));
    assert!(start.elapsed() < std::time::Duration::from_secs(30), "took {:?}", start.elapsed());
}

#[test]
fn token_help_teaches_how_to_use_a_token() {
    let help = Command::new(env!("CARGO_BIN_EXE_deployer")).args(["token", "create", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("prints the token once") && help.contains("--api-auth bearer:") && help.contains("<NAME>"), "{help}");
    let help = Command::new(env!("CARGO_BIN_EXE_deployer")).args(["token", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for sub in ["create", "list", "revoke"] {
        assert!(help.contains(sub), "{help}");
    }
}
