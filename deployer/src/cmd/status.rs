//! `status` and the end-of-`up` summary: what runs, what each peer sees, what is pending.

use super::state;
use crate::config::Plan;
use crate::errors::Error;
use crate::k8s::{read, Cluster};
use crate::template::Mesh;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub namespace: String,
    /// Whether everything below is ready (`pending` is empty).
    pub ready: bool,
    pub urls: BTreeMap<String, String>,
    pub peers: Peers,
    pub pods: Vec<PodReport>,
    pub swarm: BTreeMap<String, Vec<String>>,
    pub gateway_addresses: Vec<String>,
    /// What the controllers say of each object they act on (the GatewayClass, the Gateway
    /// and its listeners, every route, every policy, the Certificate).
    pub objects: Vec<Check>,
    pub certificate_ready: Option<bool>,
    pub filters_attached: Option<bool>,
    /// One line per thing not ready, with why.
    pub pending: Vec<String>,
}

/// The peers: how many are wanted, how many the StatefulSet controller counts ready (each
/// ready pod's cluster peer answers its readiness probe, REST `/id`), and how many the
/// cluster itself counts, when a peer answers through the API server's pod proxy (no exec,
/// no port-forward: read rights suffice; where the API server cannot reach pods, unknown).
#[derive(Debug, Serialize)]
pub struct Peers {
    pub desired: u32,
    pub ready: u32,
    pub cluster_peers: Option<usize>,
}

/// One object as its controller reports it.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Check {
    pub kind: String,
    pub name: String,
    pub ready: bool,
    /// Whether its controller has judged the current spec (a condition of each required
    /// type at the current generation, True or not): what `up` waits for at its end.
    pub judged: bool,
    /// The controller's conditions when ready ("Accepted, Programmed"); else the first one
    /// that is not, with the controller's own reason and message.
    pub detail: String,
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

/// Judges a `conditions` list: every type in `required` must be there and True, at the
/// object's generation when the condition carries one (an older one speaks of an older
/// spec); any condition whose type is in `if_present` must be True too when it is there.
/// Ready, judged (see [`Check`]), and what to say.
pub type Verdict = (bool, bool, String);

pub fn judge(conds: &Value, generation: Option<i64>, required: &[&str], if_present: &[&str]) -> Verdict {
    let list = conds.as_array().cloned().unwrap_or_default();
    let find = |t: &str| list.iter().find(|c| c["type"] == t);
    let why = |c: &Value| {
        let (r, m) = (c["reason"].as_str().unwrap_or_default(), c["message"].as_str().unwrap_or_default());
        let m = m.lines().next().unwrap_or_default();
        let m = if m.is_empty() { String::new() } else { format!(" ({m})") };
        format!("{} {}: {r}{m}", c["type"].as_str().unwrap_or_default(), c["status"].as_str().unwrap_or_default())
    };
    let mut ok = Vec::new();
    let mut first_bad = None;
    for t in required.iter().chain(if_present.iter().filter(|t| find(t).is_some())) {
        let Some(c) = find(t) else { return (false, false, format!("no {t} condition yet (is its controller running?)")) };
        if let (Some(g), Some(seen)) = (generation, c["observedGeneration"].as_i64()) {
            if seen < g {
                return (false, false, format!("{t} is of generation {seen}: the controller has not judged generation {g} yet"));
            }
        }
        if c["status"] != "True" {
            first_bad = first_bad.or_else(|| Some(why(c)));
        }
        ok.push(t.to_string());
    }
    match first_bad {
        Some(why) => (false, true, why),
        None => (true, true, ok.join(", ")),
    }
}

fn check(kind: &str, name: &str, (ready, judged, detail): Verdict) -> Check {
    Check { kind: kind.into(), name: name.into(), ready, judged, detail }
}

/// Route and policy statuses are per parent (routes) or ancestor (policies): each must be
/// good; none at all means no controller has taken the object up.
fn judge_each(list: &Value, generation: Option<i64>, required: &[&str], if_present: &[&str]) -> Verdict {
    let items = list.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return (false, false, "no status yet: not taken up by a controller (is it running, is the target there?)".into());
    }
    let mut details = Vec::new();
    for it in &items {
        let parent = it["parentRef"].as_object().or(it["ancestorRef"].as_object()).map(|r| {
            let n = r.get("name").and_then(Value::as_str).unwrap_or_default();
            match r.get("sectionName").and_then(Value::as_str) {
                Some(s) => format!("{n}/{s}"),
                None => n.to_string(),
            }
        });
        let (ok, judged, d) = judge(&it["conditions"], generation, required, if_present);
        let d = match parent {
            Some(p) if items.len() > 1 || !ok => format!("{p}: {d}"),
            _ => d,
        };
        if !ok {
            return (false, judged, d);
        }
        details.push(d);
    }
    details.dedup();
    (true, true, details.join("; "))
}

const GATEWAY_API: &str = "gateway.networking.k8s.io";
const ENVOY_GATEWAY: &str = "gateway.envoyproxy.io";

/// What the controllers report on the objects of the edge.
pub async fn objects(cl: &Cluster, p: &Plan) -> Result<Vec<Check>, Error> {
    let ns = p.namespace.as_str();
    let mut out = Vec::new();
    let gc = read::get_dynamic(cl, (GATEWAY_API, "v1", "GatewayClass"), None, &p.gateway_class).await?;
    out.push(match &gc {
        Some(o) => check("GatewayClass", &p.gateway_class, judge(&o.data["status"]["conditions"], o.metadata.generation, &["Accepted"], &[])),
        None => check("GatewayClass", &p.gateway_class, (false, false, "does not exist".into())),
    });
    let gw = read::get_dynamic(cl, (GATEWAY_API, "v1", "Gateway"), Some(ns), &p.name).await?;
    match &gw {
        None => out.push(check("Gateway", &p.name, (false, false, "does not exist (run `deployer up`)".into()))),
        Some(o) => {
            let g = o.metadata.generation;
            out.push(check("Gateway", &p.name, judge(&o.data["status"]["conditions"], g, &["Accepted", "Programmed"], &[])));
            let listeners = o.data["spec"]["listeners"].as_array().cloned().unwrap_or_default();
            let statuses = o.data["status"]["listeners"].as_array().cloned().unwrap_or_default();
            for l in listeners {
                let name = l["name"].as_str().unwrap_or_default();
                let verdict = match statuses.iter().find(|s| s["name"] == name) {
                    Some(s) => judge(&s["conditions"], g, &["Accepted", "ResolvedRefs", "Programmed"], &[]),
                    None => (false, false, "no status yet".into()),
                };
                out.push(check("Listener", &format!("{}/{name}", p.name), verdict));
            }
        }
    }
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={}", p.name));
    let mut routes = read::list_dynamic(cl, (GATEWAY_API, "v1", "HTTPRoute"), ns, &lp).await?;
    routes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for r in routes {
        let name = r.metadata.name.clone().unwrap_or_default();
        let verdict = judge_each(&r.data["status"]["parents"], r.metadata.generation, &["Accepted", "ResolvedRefs"], &["BackendsAvailable"]);
        out.push(check("HTTPRoute", &name, verdict));
    }
    if p.mesh == Mesh::EnvoyGateway {
        for kind in ["ClientTrafficPolicy", "BackendTrafficPolicy", "EnvoyExtensionPolicy"] {
            let mut list = read::list_dynamic(cl, (ENVOY_GATEWAY, "v1alpha1", kind), ns, &lp).await?;
            list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            for o in list {
                let name = o.metadata.name.clone().unwrap_or_default();
                out.push(check(kind, &name, judge_each(&o.data["status"]["ancestors"], o.metadata.generation, &["Accepted"], &[])));
            }
        }
    }
    let cert_name = format!("{}-tls", p.name);
    if let Some(c) = read::get_dynamic(cl, ("cert-manager.io", "v1", "Certificate"), Some(ns), &cert_name).await? {
        let verdict = match c.data["status"]["conditions"].as_array() {
            Some(_) => judge(&c.data["status"]["conditions"], c.metadata.generation, &["Ready"], &[]),
            None => (false, false, "no condition yet: not taken up by cert-manager (is it running?)".into()),
        };
        out.push(check("Certificate", &cert_name, verdict));
    }
    Ok(out)
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
    let sts = read::get::<StatefulSet>(cl, Some(&ns), name).await?;
    let peers = Peers {
        desired: p.replicas,
        ready: sts.as_ref().and_then(|s| s.status.as_ref()).and_then(|s| s.ready_replicas).unwrap_or(0) as u32,
        cluster_peers: pod_reports.iter().filter_map(|r| r.peers_seen).max().map(|n| n + 1),
    };
    if let Some(still) = crate::k8s::wait::statefulset_pending(sts.as_ref(), p.replicas) {
        pending.push(format!("peers: StatefulSet {name}: {still}"));
    }
    if let Some(n) = peers.cluster_peers.filter(|n| *n < replicas) {
        pending.push(format!("peers: the cluster counts {n} of {replicas} peers"));
    }
    let swarm = state::swarm_addresses(cl, p).await?;
    let with = state::pods_with_addresses(p, &swarm) as usize;
    if with < replicas {
        pending.push(format!("{} of {replicas} pods have no public swarm address yet (then rerun `deployer up`)", replicas - with));
    }
    let gw = read::get_dynamic(cl, (GATEWAY_API, "v1", "Gateway"), Some(&ns), name).await?;
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
    let objects = objects(cl, p).await?;
    for o in objects.iter().filter(|o| !o.ready) {
        pending.push(format!("{} {}: {}", o.kind, o.name, o.detail));
    }
    let certificate_ready = objects.iter().find(|o| o.kind == "Certificate").map(|o| o.ready);
    if certificate_ready.is_none() {
        pending.push(format!("Certificate {name}-tls for {domain} does not exist (run `deployer up`)"));
    }
    let filters_attached = match p.mesh {
        Mesh::EnvoyGateway => {
            let eep: Vec<&Check> = objects.iter().filter(|o| o.kind == "EnvoyExtensionPolicy").collect();
            (!eep.is_empty()).then(|| eep.iter().all(|o| o.ready))
        }
        // WasmPlugin has no status: present means handed to Istio.
        Mesh::Istio => read::get_dynamic(cl, ("extensions.istio.io", "v1alpha1", "WasmPlugin"), Some(&ns), &format!("{name}-router")).await?.map(|_| true),
    };
    if filters_attached.is_none() {
        pending.push("the filters are not attached yet (rerun `deployer up` once the filter server has rolled out)".into());
    }
    let base = format!("https://{domain}");
    let urls = BTreeMap::from([
        ("gateway".to_string(), format!("{base}/ipfs/<cid>")),
        ("rpc".to_string(), format!("{base}/api/v0/")),
        ("rest".to_string(), format!("{base}/id")),
    ]);
    Ok(Report {
        namespace: ns,
        ready: pending.is_empty(),
        urls,
        peers,
        pods: pod_reports,
        swarm,
        gateway_addresses,
        objects,
        certificate_ready,
        filters_attached,
        pending,
    })
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
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    println!("namespace {}", r.namespace);
    let seen = r.peers.cluster_peers.map(|n| format!(", the cluster counts {n}")).unwrap_or_default();
    println!("  {} peers {}/{} ready{seen}", mark(r.peers.ready == r.peers.desired), r.peers.ready, r.peers.desired);
    for p in &r.pods {
        let peers = p.peers_seen.map(|n| format!(", sees {n} other peers")).unwrap_or_default();
        println!("      pod {} {}{}{}", p.name, p.phase, if p.ready { " ready" } else { " not ready" }, peers);
    }
    for o in &r.objects {
        println!("  {} {} {}: {}", mark(o.ready), o.kind, o.name, o.detail);
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
        println!("ready: nothing pending");
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(t: &str, s: &str, reason: &str, gen: i64) -> Value {
        json!({"type": t, "status": s, "reason": reason, "message": format!("{reason} said the controller\nsecond line"), "observedGeneration": gen})
    }

    #[test]
    fn ready_only_when_every_required_condition_is_true_at_the_current_generation() {
        let both = json!([cond("Accepted", "True", "Accepted", 2), cond("Programmed", "True", "Programmed", 2)]);
        assert_eq!(judge(&both, Some(2), &["Accepted", "Programmed"], &[]), (true, true, "Accepted, Programmed".into()));
        // The controller's own reason and the first line of its message.
        let no_addr = json!([cond("Accepted", "True", "Accepted", 2), cond("Programmed", "False", "AddressNotAssigned", 2)]);
        assert_eq!(
            judge(&no_addr, Some(2), &["Accepted", "Programmed"], &[]),
            (false, true, "Programmed False: AddressNotAssigned (AddressNotAssigned said the controller)".into())
        );
        // A verdict on an older spec is no verdict on this one.
        let (ok, judged, why) = judge(&both, Some(3), &["Accepted"], &[]);
        assert!(!ok && !judged && why.contains("generation 3"), "{why}");
        let (ok, judged, why) = judge(&json!([]), Some(1), &["Accepted"], &[]);
        assert!(!ok && !judged && why.contains("no Accepted condition"), "{why}");
        // Optional conditions count only when present.
        assert!(judge(&both, Some(2), &["Accepted"], &["BackendsAvailable"]).0);
        let backends = json!([cond("Accepted", "True", "Accepted", 1), cond("BackendsAvailable", "False", "EndpointsNotFound", 1)]);
        assert!(!judge(&backends, Some(1), &["Accepted"], &["BackendsAvailable"]).0);
    }

    #[test]
    fn each_parent_of_a_route_must_be_good() {
        let good = json!({"parentRef": {"name": "gw", "sectionName": "http"}, "conditions": [cond("Accepted", "True", "Accepted", 1)]});
        let bad = json!({"parentRef": {"name": "gw", "sectionName": "https"}, "conditions": [cond("Accepted", "False", "NotAllowedByListeners", 1)]});
        assert!(judge_each(&json!([good.clone()]), Some(1), &["Accepted"], &[]).0);
        let (ok, judged, why) = judge_each(&json!([good, bad]), Some(1), &["Accepted"], &[]);
        assert!(!ok && judged && why.starts_with("gw/https: Accepted False: NotAllowedByListeners"), "{why}");
        assert!(!judge_each(&json!([]), Some(1), &["Accepted"], &[]).1);
        assert!(!judge_each(&Value::Null, Some(1), &["Accepted"], &[]).0);
    }
}
