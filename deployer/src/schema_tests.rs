//! Every rendered object checked against real schemas, for both meshes:
//! built-in kinds strictly against Kubernetes 1.33 (PyPI `kubernetes-validate`), custom
//! resources against their CRD's openAPIV3Schema from the shared CRD directory (never copied
//! into the repository). Unknown fields are errors in both. CEL rules
//! (`x-kubernetes-validations`) are not evaluated here.

use crate::render::tests::sample;
use crate::render::Object;
use crate::template::Mesh;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const BUILT_IN_GROUPS: [&str; 4] = ["", "apps", "policy", "networking.k8s.io"];

fn is_built_in(o: &Object) -> bool {
    BUILT_IN_GROUPS.contains(&crate::k8s::split_api_version(o.api_version()).0)
}

/// `KUBERNETES_VALIDATE_VERSION` from scripts/env.sh, the one place for tool versions.
fn kubernetes_validate_version() -> String {
    let env = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/env.sh");
    let text = std::fs::read_to_string(&env).unwrap_or_else(|e| panic!("{}: {e}", env.display()));
    text.lines()
        .find_map(|l| l.trim().strip_prefix("KUBERNETES_VALIDATE_VERSION="))
        .map(|v| v.trim_matches(['"', '\'']).to_string())
        .unwrap_or_else(|| panic!("no KUBERNETES_VALIDATE_VERSION= line in {}", env.display()))
}

fn kubernetes_validate() -> PathBuf {
    if let Ok(p) = std::env::var("KUBERNETES_VALIDATE") {
        return p.into();
    }
    let cache = std::env::var("IPFS_EDGE_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        let base = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
        base.join("ipfs-edge")
    });
    let p = cache.join("venv/bin/kubernetes-validate");
    assert!(
        p.exists(),
        "{} is missing: install it with `python3 -m venv $IPFS_EDGE_CACHE/venv && \
         $IPFS_EDGE_CACHE/venv/bin/pip install kubernetes-validate=={}` (or `./x setup`, or set KUBERNETES_VALIDATE)",
        p.display(),
        kubernetes_validate_version()
    );
    p
}

fn crd_dir() -> PathBuf {
    std::env::var("IPFS_EDGE_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds"))
}

#[test]
fn built_in_objects_pass_strict_kubernetes_1_33_schemas() {
    let version = crate::values::Values::defaults().req("KUBERNETES_SCHEMA_VERSION").to_string();
    let tool = kubernetes_validate();
    for mesh in [Mesh::EnvoyGateway, Mesh::Istio] {
        let objects = sample(mesh, 3);
        let built_in: Vec<Object> = objects.into_iter().filter(is_built_in).collect();
        let kinds: std::collections::BTreeSet<_> = built_in.iter().map(|o| o.kind().to_string()).collect();
        for k in ["Namespace", "Secret", "ConfigMap", "Service", "StatefulSet", "Deployment", "PodDisruptionBudget", "NetworkPolicy"] {
            assert!(kinds.contains(k), "{k} not rendered");
        }
        let dir = tempfile::tempdir().unwrap();
        let files = crate::render::write_dir(&built_in, dir.path()).unwrap();
        let out = Command::new(&tool)
            .args(["-k", &version, "--strict"])
            .args(&files)
            .output()
            .expect("kubernetes-validate runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{}: kubernetes-validate failed:\n{text}", mesh.as_str());
        assert!(!text.contains("ERROR"), "{text}");
        assert_eq!(text.matches("INFO").count(), files.len(), "one verdict per file:\n{text}");
    }
}

/// (group, version, kind) -> openAPIV3Schema, from every CRD file under the directory.
fn load_crds() -> BTreeMap<(String, String, String), Value> {
    let dir = crd_dir();
    assert!(dir.is_dir(), "CRD directory {} is missing (set IPFS_EDGE_CRDS)", dir.display());
    let mut out = BTreeMap::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "yaml" && x != "yml") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for de in serde_yaml_ng::Deserializer::from_str(&text) {
                use serde::Deserialize as _;
                let Ok(doc) = Value::deserialize(de) else { continue };
                if doc["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let group = doc["spec"]["group"].as_str().unwrap().to_string();
                let kind = doc["spec"]["names"]["kind"].as_str().unwrap().to_string();
                for v in doc["spec"]["versions"].as_array().unwrap() {
                    let version = v["name"].as_str().unwrap().to_string();
                    let schema = v["schema"]["openAPIV3Schema"].clone();
                    out.insert((group.clone(), version, kind.clone()), schema);
                }
            }
        }
    }
    out
}

/// As the API server prunes/refuses: an object schema with `properties` and neither
/// `additionalProperties` nor `x-kubernetes-preserve-unknown-fields` allows no other field.
/// `nullable` is OpenAPI's, not JSON Schema's: it becomes a type that admits null.
fn strict(schema: &mut Value) {
    if let Value::Object(m) = schema {
        let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if m.contains_key("properties") && !m.contains_key("additionalProperties") && !preserve {
            m.insert("additionalProperties".into(), Value::Bool(false));
        }
        if m.get("nullable") == Some(&Value::Bool(true)) {
            if let Some(Value::String(t)) = m.get("type").cloned() {
                m.insert("type".into(), serde_json::json!([t, "null"]));
            }
        }
        // int-or-string fields carry anyOf; a lone `type` would contradict it.
        if m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            m.remove("type");
        }
        for v in m.values_mut() {
            strict(v);
        }
    } else if let Value::Array(a) = schema {
        a.iter_mut().for_each(strict);
    }
}

#[test]
fn custom_resources_match_their_crds() {
    let crds = load_crds();
    for mesh in [Mesh::EnvoyGateway, Mesh::Istio] {
        // The Prometheus Operator's CRDs are not in the shared CRD directory (and `up` never
        // installs them): the PodMonitor, applied only where they are served, is left out.
        let customs: Vec<Object> = sample(mesh, 3).into_iter().filter(|o| !is_built_in(o) && !o.if_served).collect();
        assert!(customs.len() >= 6, "{}: too few custom resources", mesh.as_str());
        for o in &customs {
            let (group, version) = crate::k8s::split_api_version(o.api_version());
            let key = (group.to_string(), version.to_string(), o.kind().to_string());
            let mut schema = crds
                .get(&key)
                .unwrap_or_else(|| panic!("no CRD for {key:?} under {}", crd_dir().display()))
                .clone();
            // The API server always admits these at the top (not every CRD lists them), and
            // checks metadata itself.
            if let Some(props) = schema["properties"].as_object_mut() {
                props.insert("metadata".into(), serde_json::json!({"type": "object"}));
                props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
                props.insert("kind".into(), serde_json::json!({"type": "string"}));
            }
            strict(&mut schema);
            let validator = jsonschema::draft4::new(&schema)
                .unwrap_or_else(|e| panic!("{key:?}: schema does not compile: {e}"));
            let errors: Vec<String> =
                validator.iter_errors(&o.value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{} {}: {}", mesh.as_str(), o.display(), errors.join("\n"));
        }
    }
}

#[test]
fn the_validator_is_the_version_scripts_env_sh_pins() {
    let want = kubernetes_validate_version();
    assert!(want.split('.').count() == 3 && want.split('.').all(|p| p.parse::<u32>().is_ok()), "{want:?}");
    let tool = kubernetes_validate();
    let out = Command::new(&tool).arg("--version").output().expect("kubernetes-validate runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&want), "{} --version says {text:?}, scripts/env.sh pins {want}: run `./x setup`", tool.display());
}

#[test]
fn strict_schema_catches_unknown_fields() {
    let mut schema = serde_json::json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}});
    strict(&mut schema);
    let v = jsonschema::draft4::new(&schema).unwrap();
    assert!(v.is_valid(&serde_json::json!({"spec": {"a": "x"}})));
    assert!(!v.is_valid(&serde_json::json!({"spec": {"b": "x"}})));
}
