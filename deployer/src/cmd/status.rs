//! `status` and the end-of-`up` summary: what runs, what each peer sees, what is pending.

use super::state;
use crate::config::Plan;
use crate::errors::Error;
use crate::k8s::{read, Cluster};
use crate::template::Mesh;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub namespace: String,
    pub urls: BTreeMap<String, String>,
    pub pods: Vec<PodReport>,
    pub swarm: BTreeMap<String, Vec<String>>,
    pub gateway_addresses: Vec<String>,
    pub certificate_ready: Option<bool>,
    pub filters_attached: Option<bool>,
    pub pending: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PodReport {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    /// Other cluster peers this peer sees (its REST /id `cluster_peers`, minus itself).
    pub peers_seen: Option<usize>,
    /// What this peer's Kubo announces (its RPC `id` `Addresses`), when it answers.
    pub announced: Option<Vec<String>>,
}

pub async fn report(cl: &Cluster, p: &Plan) -> Result<Report, Error> {
    let ns = p.namespace.clone();
    let name = p.name.as_str();
    let domain = p.domain.as_str();
    let replicas = p.replicas as usize;
    let mut pending = Vec::new();
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name=ipfs-cluster,app.kubernetes.io/instance={name}"));
    let list = read::list::<Pod>(cl, Some(&ns), &lp).await?;
    let mut pod_reports = Vec::new();
    for pod in list {
        let pname = pod.metadata.name.clone().unwrap_or_default();
        let st = pod.status.unwrap_or_default();
        let ready = st.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True");
        let (peers_seen, announced) = if ready {
            (peers_seen(cl, &ns, &pname, p.port_cluster_rest).await, announced(cl, &ns, &pname, p.port_kubo_rpc).await)
        } else {
            (None, None)
        };
        pod_reports.push(PodReport { name: pname, phase: st.phase.unwrap_or_default(), ready, peers_seen, announced });
    }
    let ready = pod_reports.iter().filter(|p| p.ready).count();
    if ready < replicas {
        pending.push(format!("{ready}/{replicas} peers ready"));
    }
    let swarm = state::swarm_addresses(cl, p).await?;
    let with = state::pods_with_addresses(p, &swarm) as usize;
    if with < replicas {
        pending.push(format!("{} of {replicas} pods have no public swarm address yet (then rerun `deployer up`)", replicas - with));
    }
    let gw = read::get_dynamic(cl, ("gateway.networking.k8s.io", "v1", "Gateway"), Some(&ns), name).await?;
    let gateway_addresses: Vec<String> = gw
        .as_ref()
        .and_then(|g| g.data["status"]["addresses"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a["value"].as_str().map(str::to_string))
        .collect();
    if gateway_addresses.is_empty() {
        pending.push(format!("the Gateway has no address yet: then point DNS for {domain} at it"));
    }
    let cert = read::get_dynamic(cl, ("cert-manager.io", "v1", "Certificate"), Some(&ns), &format!("{name}-tls")).await?;
    let certificate_ready = cert.map(|c| condition_true(&c.data["status"]["conditions"], "Ready"));
    if certificate_ready != Some(true) {
        pending.push(format!("the certificate for {domain} is not issued yet"));
    }
    let filters_attached = match p.mesh {
        Mesh::EnvoyGateway => read::get_dynamic(cl, ("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"), Some(&ns), &format!("{name}-filters"))
            .await?
            .map(|p| {
                p.data["status"]["ancestors"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|x| condition_true(&x["conditions"], "Accepted")))
            }),
        // WasmPlugin has no status: present means handed to Istio.
        Mesh::Istio => read::get_dynamic(cl, ("extensions.istio.io", "v1alpha1", "WasmPlugin"), Some(&ns), &format!("{name}-router")).await?.map(|_| true),
    };
    if filters_attached != Some(true) {
        pending.push("the filters are not attached (accepted) yet".into());
    }
    let base = format!("https://{domain}");
    let urls = BTreeMap::from([
        ("gateway".to_string(), format!("{base}/ipfs/<cid>")),
        ("rpc".to_string(), format!("{base}/api/v0/")),
        ("rest".to_string(), format!("{base}/id")),
    ]);
    Ok(Report { namespace: ns, urls, pods: pod_reports, swarm, gateway_addresses, certificate_ready, filters_attached, pending })
}

fn condition_true(conds: &serde_json::Value, ty: &str) -> bool {
    conds.as_array().is_some_and(|c| c.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// Kubo's announced addresses (RPC `POST /api/v0/id`), through the pod proxy.
async fn announced(cl: &Cluster, ns: &str, pod: &str, port: u16) -> Option<Vec<String>> {
    let text = read::pod_proxy(cl, ns, pod, port, "POST", "/api/v0/id").await?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v["Addresses"].as_array()?.iter().filter_map(|a| a.as_str().map(str::to_string)).collect())
}

/// Through the API server's pod proxy: no port-forward, no exec.
async fn peers_seen(cl: &Cluster, ns: &str, pod: &str, port: u16) -> Option<usize> {
    let text = read::pod_proxy(cl, ns, pod, port, "GET", "/id").await?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v["cluster_peers"].as_array()?.len().saturating_sub(1))
}

pub async fn summary(cl: &Cluster, p: &Plan) -> Result<(), Error> {
    let r = report(cl, p).await?;
    print_text(&r);
    Ok(())
}

fn print_text(r: &Report) {
    println!("namespace {}", r.namespace);
    for p in &r.pods {
        let peers = p.peers_seen.map(|n| format!(", sees {n} other peers")).unwrap_or_default();
        println!("  pod {} {}{}{}", p.name, p.phase, if p.ready { " ready" } else { " not ready" }, peers);
    }
    for (pod, addrs) in &r.swarm {
        println!("  swarm {pod}: {}", addrs.join(" "));
    }
    for p in &r.pods {
        if let Some(a) = &p.announced {
            println!("  announced by {}: {}", p.name, a.join(" "));
        }
    }
    if !r.gateway_addresses.is_empty() {
        println!("  gateway address: {}", r.gateway_addresses.join(" "));
    }
    println!("URLs:");
    for (k, u) in &r.urls {
        println!("  {k:8} {u}");
    }
    if r.pending.is_empty() {
        println!("nothing pending");
    } else {
        println!("pending:");
        for p in &r.pending {
            println!("  - {p}");
        }
    }
}

pub async fn status(cl: &Cluster, mut plan: Plan, output: Output) -> Result<(), Error> {
    state::prepare(cl, &mut plan).await?;
    let r = report(cl, &plan).await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r).expect("serializable")),
        Output::Text => print_text(&r),
    }
    Ok(())
}
