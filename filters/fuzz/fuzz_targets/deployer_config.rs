//! The deployer's config file reader (`Settings::merged`, then `plan`).
//! The deployer is a binary crate, so its source files are compiled into
//! this target as modules of their own (the same code, no copy); what it
//! reads is written to a file, as `--config FILE` gives it. Properties:
//! - any file gives settings or a usage error (exit code 2) naming the file,
//!   never a panic, and so does checking what it gave;
//! - flags win over the file: with every flag given, the file changes
//!   nothing that is resolved.
#![no_main]
#![allow(dead_code)]

#[path = "../../../deployer/src/config.rs"]
mod config;
#[path = "../../../deployer/src/errors.rs"]
mod errors;
#[path = "../../../deployer/src/template.rs"]
mod template;
#[path = "../../../deployer/src/values.rs"]
mod values;

use std::path::PathBuf;
use std::sync::OnceLock;

use config::{Acme, Settings, SwarmServiceType};
use errors::Error;
use libfuzzer_sys::fuzz_target;
use template::Mesh;

fn file() -> &'static PathBuf {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| std::env::temp_dir().join(format!("edge-fuzz-deployer-{}.yaml", std::process::id())))
}

/// A valid router configuration, as `--router-config FILE` gives it.
fn router_file() -> &'static PathBuf {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("edge-fuzz-deployer-router-{}.json", std::process::id()));
        std::fs::write(&p, r#"{"credentials": {"bearer_tokens": ["fuzz-4b1d0c0ffee5eed5a1t"]}}"#).expect("temporary router file");
        p
    })
}

fn all_flags() -> Settings {
    Settings {
        config: None,
        name: Some("edge".into()),
        namespace: Some("ipfs".into()),
        domain: Some("ipfs.example.org".into()),
        acme_email: Some("ops@example.org".into()),
        acme: Some(Acme::Production),
        replicas: Some(3),
        storage_class: Some("fast".into()),
        kubo_storage_size: Some("500Gi".into()),
        cluster_storage_size: Some("10Gi".into()),
        kubo_image: Some("docker.io/ipfs/kubo:v0.42.0".into()),
        cluster_image: Some("docker.io/ipfs/ipfs-cluster:v1.1.6".into()),
        mesh: Some(Mesh::Istio),
        // LoadBalancer: a shared swarm IP needs it.
        swarm_service_type: Some(SwarmServiceType::LoadBalancer),
        swarm_ip: Some("192.0.2.4".parse().unwrap()),
        filters_dir: Some("f".into()),
        // Wins over the file's `router:` object.
        router_config: Some(router_file().clone()),
        rate_limit_per_minute: Some(7),
        // A setting added later is a flag not given here: the property then
        // fails where the file sets it, which is the prompt to add it.
        ..Default::default()
    }
}

fuzz_target!(init: edge_fuzz::init("deployer_config"), |data: &[u8]| {
    let path = file();
    std::fs::write(path, data).expect("temporary config file");
    let shown = path.display().to_string();

    let only_file = Settings { config: Some(path.clone()), ..Default::default() };
    match only_file.merged() {
        Ok(s) => match s.plan() {
            Ok(_) => {}
            Err(Error::Usage(_)) => {}
            Err(e) => panic!("plan: not a usage error: {e}"),
        },
        Err(Error::Usage(m)) => assert!(m.contains(&shown), "the error does not name the file: {m}"),
        Err(e) => panic!("merged: not a usage error: {e}"),
    }

    let flags = all_flags();
    let with_file = Settings { config: Some(path.clone()), ..all_flags() };
    if let Ok(merged) = with_file.merged() {
        // The plan holds every setting, the filters' directory included.
        let (a, b) = (merged.plan().expect("the flags are valid"), flags.plan().expect("the flags are valid"));
        assert_eq!(a, b, "the file won over a flag");
    }
});
