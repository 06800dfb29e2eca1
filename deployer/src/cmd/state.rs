//! What is already in the cluster that the commands must reuse: the generated secrets, the
//! number of peers that runs, the swarm Services' public addresses. Read through the
//! Kubernetes layer; used by every command that renders.

use crate::config::Plan;
use crate::errors::Error;
use crate::identity::Generated;
use crate::k8s::{read, Cluster};
use crate::template::Mesh;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::ListParams;
use std::collections::BTreeMap;

pub struct State {
    pub generated: Generated,
    pub replicas: Option<u32>,
    pub announce: BTreeMap<String, Vec<String>>,
}

/// Reads the state and settles the plan on it: replicas and the router configuration
/// default to what runs now.
pub async fn prepare(cl: &Cluster, plan: &mut Plan) -> Result<State, Error> {
    let state = read(cl, plan).await?;
    plan.follow_running(state.replicas);
    if plan.router.is_none() {
        plan.keep_router(running_router(cl, plan).await?)?;
    }
    Ok(state)
}

/// The router filter's configuration in the applied policy, if there is one.
async fn running_router(cl: &Cluster, p: &Plan) -> Result<Option<serde_json::Value>, Error> {
    let ns = Some(p.namespace.as_str());
    Ok(match p.mesh {
        Mesh::EnvoyGateway => {
            read::get_dynamic(cl, ("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy"), ns, &format!("{}-filters", p.name))
                .await?
                .and_then(|o| {
                    o.data["spec"]["wasm"].as_array()?.iter().find(|w| w["rootID"] == "router").map(|w| w["config"].clone())
                })
        }
        Mesh::Istio => read::get_dynamic(cl, ("extensions.istio.io", "v1alpha1", "WasmPlugin"), ns, &format!("{}-router", p.name))
            .await?
            .map(|o| o.data["spec"]["pluginConfig"].clone()),
    }
    .filter(|v| !v.is_null()))
}

async fn read(cl: &Cluster, p: &Plan) -> Result<State, Error> {
    let ns = Some(p.namespace.as_str());
    let mut generated = Generated::default();
    if let Some(s) = read::get::<Secret>(cl, ns, &format!("{}-cluster-secret", p.name)).await? {
        if let Some(b) = s.data.and_then(|d| d.get("cluster-secret").cloned()) {
            generated.cluster_secret = String::from_utf8_lossy(&b.0).into_owned();
        }
    }
    if let Some(s) = read::get::<Secret>(cl, ns, &format!("{}-identities", p.name)).await? {
        let data: BTreeMap<String, String> =
            s.data.unwrap_or_default().into_iter().map(|(k, b)| (k, String::from_utf8_lossy(&b.0).into_owned())).collect();
        generated.identities = Generated::identities_from_data(&data);
    }
    let replicas = read::get::<StatefulSet>(cl, ns, &p.name)
        .await?
        .and_then(|s| s.spec.and_then(|s| s.replicas))
        .map(|r| r as u32);
    let announce = swarm_addresses(cl, p).await?;
    Ok(State { generated, replicas, announce })
}

pub fn swarm_selector(name: &str) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/instance={name},app.kubernetes.io/component=swarm"))
}

/// The swarm Services, each with its ordinal.
pub async fn swarm_services(cl: &Cluster, p: &Plan) -> Result<Vec<(u32, Service)>, Error> {
    let prefix = format!("{}-swarm-", p.name);
    Ok(read::list::<Service>(cl, Some(&p.namespace), &swarm_selector(&p.name))
        .await?
        .into_iter()
        .filter_map(|s| {
            let ord = s.metadata.name.as_deref()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((ord, s))
        })
        .collect())
}

/// Pod name -> public swarm multiaddrs, from the swarm Services that have an address.
pub async fn swarm_addresses(cl: &Cluster, p: &Plan) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let port = p.port_swarm;
    let mut out = BTreeMap::new();
    for (ordinal, s) in swarm_services(cl, p).await? {
        let mut addrs = Vec::new();
        for ing in s.status.and_then(|st| st.load_balancer).and_then(|lb| lb.ingress).unwrap_or_default() {
            let host = match (ing.ip, ing.hostname) {
                (Some(ip), _) if ip.contains(':') => format!("/ip6/{ip}"),
                (Some(ip), _) => format!("/ip4/{ip}"),
                (None, Some(h)) => format!("/dns/{h}"),
                _ => continue,
            };
            addrs.push(format!("{host}/tcp/{port}"));
            addrs.push(format!("{host}/udp/{port}/quic-v1"));
        }
        if !addrs.is_empty() {
            out.insert(format!("{}-{ordinal}", p.name), addrs);
        }
    }
    Ok(out)
}

/// Deletes the swarm Services of ordinals from `replicas` on; returns how many.
pub async fn delete_swarm_beyond(cl: &Cluster, p: &Plan, replicas: u32) -> Result<usize, Error> {
    let mut n = 0;
    for (ord, s) in swarm_services(cl, p).await? {
        if ord >= replicas {
            n += read::delete::<Service>(cl, Some(&p.namespace), s.metadata.name.as_deref().unwrap_or_default()).await? as usize;
        }
    }
    Ok(n)
}
