//! What is already in the cluster that the commands must reuse: the generated secrets, the
//! number of peers that runs, the swarm Services' public addresses. Read through the
//! Kubernetes layer; used by every command that renders.

use crate::config::Plan;
use crate::errors::Error;
use crate::identity::Generated;
use crate::k8s::{read, Cluster};
use k8s_openapi::api::apps::v1::StatefulSet;
use crate::config::SwarmServiceType;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use kube::api::ListParams;
use std::collections::BTreeMap;

pub struct State {
    pub generated: Generated,
    pub replicas: Option<u32>,
    pub announce: BTreeMap<String, Vec<String>>,
    /// No API tokens Secret was found: `up` creates the admin token (and says so).
    pub new_tokens: bool,
}

/// Reads the state and settles the plan on it: replicas default to what runs now.
pub async fn prepare(cl: &Cluster, plan: &mut Plan) -> Result<State, Error> {
    let state = read(cl, plan).await?;
    plan.follow_running(state.replicas);
    Ok(state)
}

/// For the commands that apply the filters' attachment (`up`): the router configuration
/// defaults to what runs now.
pub async fn keep_running_router(cl: &Cluster, plan: &mut Plan) -> Result<(), Error> {
    if plan.router.is_none() {
        plan.keep_router(running_router(cl, plan).await?)?;
    }
    Ok(())
}

/// The applied policies that carry the router's configuration (`render::router_policy_refs`),
/// those that exist, in that order.
pub async fn router_policies(cl: &Cluster, p: &Plan) -> Result<Vec<serde_json::Value>, Error> {
    let (gvk, names) = crate::render::router_policy_refs(p);
    let mut found = Vec::new();
    for name in names {
        if let Some(o) = read::get_dynamic(cl, gvk, Some(&p.namespace), &name).await? {
            let mut v = serde_json::to_value(o).map_err(|e| Error::Local(format!("cannot read {}/{name}: {e}", gvk.2)))?;
            // A list's items may come without them; the apply path needs them.
            v["apiVersion"] = format!("{}/{}", gvk.0, gvk.1).into();
            v["kind"] = gvk.2.into();
            found.push(v);
        }
    }
    Ok(found)
}

/// The router filter's configuration in the applied policy, if there is one.
async fn running_router(cl: &Cluster, p: &Plan) -> Result<Option<serde_json::Value>, Error> {
    // Every carrier holds the same configuration (one render): the first one tells.
    Ok(router_policies(cl, p).await?.first().and_then(crate::render::router_config))
}

/// The API tokens Secret's data (token name -> token); `None` when there is no Secret.
pub async fn api_tokens(cl: &Cluster, p: &Plan) -> Result<Option<BTreeMap<String, String>>, Error> {
    Ok(read::get::<Secret>(cl, Some(&p.namespace), &api_tokens_secret(p)).await?.map(|s| {
        s.data.unwrap_or_default().into_iter().map(|(k, b)| (k, String::from_utf8_lossy(&b.0).into_owned())).collect()
    }))
}

/// The name of the Secret holding the API tokens (base/secrets.yaml).
pub fn api_tokens_secret(p: &Plan) -> String {
    format!("{}-api-tokens", p.name)
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
    generated.api_tokens = api_tokens(cl, p).await?;
    let replicas = read::get::<StatefulSet>(cl, ns, &p.name)
        .await?
        .and_then(|s| s.spec.and_then(|s| s.replicas))
        .map(|r| r as u32);
    let announce = swarm_addresses(cl, p).await?;
    Ok(State { generated, replicas, announce, new_tokens: false })
}

pub fn swarm_selector(name: &str) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/instance={name},app.kubernetes.io/component=swarm"))
}

/// The swarm Services (a TCP `-swarm-N` and a UDP `-swarm-N-udp` per pod), each with its
/// ordinal.
pub async fn swarm_services(cl: &Cluster, p: &Plan) -> Result<Vec<(u32, Service)>, Error> {
    let prefix = format!("{}-swarm-", p.name);
    Ok(read::list::<Service>(cl, Some(&p.namespace), &swarm_selector(&p.name))
        .await?
        .into_iter()
        .filter_map(|s| {
            let rest = s.metadata.name.as_deref()?.strip_prefix(&prefix)?;
            let ord = rest.strip_suffix("-udp").unwrap_or(rest).parse().ok()?;
            Some((ord, s))
        })
        .collect())
}

/// The multiaddrs one swarm Service makes public, given its host's address (`/ip4/...`).
fn multiaddrs(host: &str, s: &Service, node_port: bool) -> Vec<String> {
    let ports = s.spec.as_ref().and_then(|sp| sp.ports.clone()).unwrap_or_default();
    ports
        .iter()
        .filter_map(|port| {
            let n = if node_port { port.node_port? } else { port.port };
            Some(match port.protocol.as_deref() {
                Some("UDP") => format!("{host}/udp/{n}/quic-v1"),
                _ => format!("{host}/tcp/{n}"),
            })
        })
        .collect()
}

fn host_of(ip: Option<&str>, hostname: Option<&str>) -> Option<String> {
    match (ip, hostname) {
        (Some(ip), _) if ip.contains(':') => Some(format!("/ip6/{ip}")),
        (Some(ip), _) => Some(format!("/ip4/{ip}")),
        (None, Some(h)) => Some(format!("/dns/{h}")),
        _ => None,
    }
}

/// Pod name -> public swarm multiaddrs: a LoadBalancer Service's assigned address and port;
/// for NodePort, the ExternalIP of the node the pod runs on and the Service's node port.
/// Pods whose Services have no address yet are absent.
pub async fn swarm_addresses(cl: &Cluster, p: &Plan) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let services = swarm_services(cl, p).await?;
    let node_port = p.swarm_service_type == SwarmServiceType::NodePort;
    let mut node_of: BTreeMap<String, Option<String>> = BTreeMap::new();
    if node_port && !services.is_empty() {
        let pods = read::list::<Pod>(cl, Some(&p.namespace), &ListParams::default().labels(&format!("app.kubernetes.io/instance={}", p.name))).await?;
        for pod in pods {
            let Some(node) = pod.spec.and_then(|s| s.node_name) else { continue };
            let ip = read::get::<Node>(cl, None, &node).await?.and_then(|n| {
                n.status?.addresses?.into_iter().find(|a| a.type_ == "ExternalIP").map(|a| a.address)
            });
            node_of.insert(pod.metadata.name.unwrap_or_default(), ip);
        }
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ordinal, s) in services {
        let pod = format!("{}-{ordinal}", p.name);
        let mut addrs = Vec::new();
        if node_port {
            if let Some(Some(ip)) = node_of.get(&pod) {
                addrs.extend(multiaddrs(&host_of(Some(ip), None).unwrap_or_default(), &s, true));
            }
        } else {
            for ing in s.status.as_ref().and_then(|st| st.load_balancer.as_ref()).and_then(|lb| lb.ingress.clone()).unwrap_or_default() {
                if let Some(host) = host_of(ing.ip.as_deref(), ing.hostname.as_deref()) {
                    addrs.extend(multiaddrs(&host, &s, false));
                }
            }
        }
        if !addrs.is_empty() {
            let e = out.entry(pod).or_default();
            e.extend(addrs);
            e.sort();
        }
    }
    Ok(out)
}

/// How many pods have a public address on every one of their swarm Services.
pub fn pods_with_addresses(p: &Plan, addrs: &BTreeMap<String, Vec<String>>) -> u32 {
    (0..p.replicas)
        .filter(|i| {
            addrs.get(&format!("{}-{i}", p.name)).is_some_and(|a| a.iter().any(|x| x.contains("/tcp/")) && a.iter().any(|x| x.contains("/udp/")))
        })
        .count() as u32
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

/// The objects a render may leave out (`render::optional_objects`: the native read route,
/// the probes route and its direct response, the HTTP listener's health policy), each deleted
/// when this render has none: left, an earlier configuration's would go on serving (reads the
/// router now refuses, a fixed 200 where active health should answer 503). Returns those
/// deleted, as `Kind/name`.
pub async fn delete_left_out(cl: &Cluster, plan: &Plan, objects: &[crate::render::Object]) -> Result<Vec<String>, Error> {
    let mut gone = Vec::new();
    for (gvk, name) in crate::render::optional_objects(plan) {
        if objects.iter().any(|o| o.kind() == gvk.2 && o.name() == name) {
            continue;
        }
        // Looked up first: a rerun that has nothing to delete sends no write.
        if read::get_dynamic(cl, gvk, Some(&plan.namespace), &name).await?.is_none() {
            continue;
        }
        let object = serde_json::json!({
            "apiVersion": format!("{}/{}", gvk.0, gvk.1),
            "kind": gvk.2,
            "metadata": {"name": name, "namespace": plan.namespace},
        });
        if read::delete_object(cl, &object).await? {
            gone.push(format!("{}/{name}", gvk.2));
        }
    }
    Ok(gone)
}
