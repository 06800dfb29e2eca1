//! `up`, `down`, `scale`: server-side apply of the rendered objects with one field manager,
//! step by step, with waits.

use crate::cluster::{api_status, call_error, Cluster};
use crate::config::Settings;
use crate::errors::Error;
use crate::identity::Generated;
use crate::render::{render, Filters, Input, Object};
use crate::template::Step;
use crate::values::Values;
use crate::wait::{self, WaitArgs};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use std::collections::BTreeMap;
use std::io::IsTerminal;

/// The one field manager of every apply: a rerun owns exactly what it owned before.
pub const FIELD_MANAGER: &str = "ipfs-edge-deployer";

/// What is already in the cluster that a render must reuse.
pub struct State {
    pub generated: Generated,
    pub replicas: Option<u32>,
    pub announce: BTreeMap<String, Vec<String>>,
}

pub async fn read_state(cl: &Cluster, v: &Values) -> Result<State, Error> {
    let ns = v.req("NAMESPACE");
    let name = v.req("NAME");
    let secrets: Api<Secret> = Api::namespaced(cl.client.clone(), ns);
    let mut generated = Generated::default();
    let get = |e: kube::Error, what: &str| -> Error {
        match api_status(&e) {
            Some((403, message)) => Error::Forbidden {
                verb: "get".into(),
                resource: what.into(),
                ns: format!(" in namespace {ns}"),
                message,
            },
            _ => Error::Unreachable { server: cl.server.clone(), context: cl.context.clone(), reason: e.to_string() },
        }
    };
    if let Some(s) = secrets.get_opt(&format!("{name}-cluster-secret")).await.map_err(|e| get(e, "secrets"))? {
        if let Some(b) = s.data.and_then(|d| d.get("cluster-secret").cloned()) {
            generated.cluster_secret = String::from_utf8_lossy(&b.0).into_owned();
        }
    }
    if let Some(s) = secrets.get_opt(&format!("{name}-identities")).await.map_err(|e| get(e, "secrets"))? {
        let data: BTreeMap<String, String> = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, b)| (k, String::from_utf8_lossy(&b.0).into_owned()))
            .collect();
        generated.identities = Generated::identities_from_data(&data);
    }
    let sts: Api<StatefulSet> = Api::namespaced(cl.client.clone(), ns);
    let replicas = sts
        .get_opt(name)
        .await
        .map_err(|e| get(e, "statefulsets.apps"))?
        .and_then(|s| s.spec.and_then(|s| s.replicas))
        .map(|r| r as u32);
    let announce = swarm_addresses(cl, v).await?;
    Ok(State { generated, replicas, announce })
}

/// Pod name -> public swarm multiaddrs, from the swarm Services that have an address.
pub async fn swarm_addresses(cl: &Cluster, v: &Values) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let ns = v.req("NAMESPACE");
    let name = v.req("NAME");
    let port = v.port("PORT_SWARM");
    let svcs: Api<Service> = Api::namespaced(cl.client.clone(), ns);
    let list = svcs.list(&swarm_selector(name)).await.map_err(|e| Error::Unreachable {
        server: cl.server.clone(),
        context: cl.context.clone(),
        reason: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for s in list {
        let Some(ordinal) = s.metadata.name.as_deref().and_then(|n| n.strip_prefix(&format!("{name}-swarm-"))) else {
            continue;
        };
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
            out.insert(format!("{name}-{ordinal}"), addrs);
        }
    }
    Ok(out)
}

fn swarm_selector(name: &str) -> ListParams {
    ListParams::default().labels(&format!(
        "app.kubernetes.io/instance={name},app.kubernetes.io/component=swarm"
    ))
}

/// Server-side apply of one object; returns whether the server changed it. No write is sent
/// when the live object shows the apply would change nothing (`noop`).
pub async fn apply_one(cl: &Cluster, o: &Object) -> Result<bool, Error> {
    let (ar, caps) = cl.resolve(o)?;
    let api = cl.api(&ar, &caps, o.namespace());
    let live = api
        .get_opt(o.name())
        .await
        .map_err(|e| call_error(cl, e, "get", &ar, o.namespace(), &format!("reading {}", o.display())))?;
    apply_over(cl, o, live).await
}

/// Like `apply_one`, with the live object (or its absence) already read.
async fn apply_over(cl: &Cluster, o: &Object, live: Option<DynamicObject>) -> Result<bool, Error> {
    let (ar, caps) = cl.resolve(o)?;
    let api = cl.api(&ar, &caps, o.namespace());
    let mut body = o.value.clone();
    // A PodDisruptionBudget served only as v1beta1 (Kubernetes < 1.21) is applied as that.
    body["apiVersion"] = serde_json::Value::String(ar.api_version.clone());
    if let Some(live) = &live {
        let live = serde_json::to_value(live).expect("objects serialize");
        if !crate::noop::would_change(&live, &body, FIELD_MANAGER) {
            return Ok(false);
        }
    }
    let before = live.and_then(|x| x.metadata.resource_version);
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let start = std::time::Instant::now();
    let after = loop {
        match api.patch(o.name(), &pp, &Patch::Apply(&body)).await {
            Ok(after) => break after,
            // cert-manager's webhook answers only once its CA is injected, a little after its
            // Deployment is available: retry rather than fail a fresh install.
            Err(e) if webhook_not_ready(&e) && start.elapsed() < std::time::Duration::from_secs(120) => {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(e) => return Err(call_error(cl, e, "patch", &ar, o.namespace(), &format!("applying {}", o.display()))),
        }
    };
    Ok(before != after.metadata.resource_version)
}

/// Applies one step's objects: namespaces first (the rest may live in them), then the
/// others concurrently (they do not depend on each other within a step). The live state is
/// read with one LIST per kind and namespace rather than one GET per object.
pub async fn apply_all(cl: &Cluster, objects: &[&Object]) -> Result<usize, Error> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let mut changed = 0;
    let (namespaces, rest): (Vec<&Object>, Vec<&Object>) = objects.iter().partition(|o| o.kind() == "Namespace");
    for o in namespaces {
        changed += apply_one(cl, o).await? as usize;
    }
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<&Object>> = BTreeMap::new();
    for o in rest {
        let (ar, _) = cl.resolve(o)?;
        groups.entry((ar.api_version.clone(), ar.kind.clone(), o.namespace().map(str::to_string))).or_default().push(o);
    }
    let lists = stream::iter(groups.into_values().map(|objs| async move {
        let (ar, caps) = cl.resolve(objs[0])?;
        let live: BTreeMap<String, DynamicObject> = if objs.len() == 1 || caps.scope == kube::discovery::Scope::Cluster {
            // One object (or cluster-scoped: a LIST would read the whole cluster): GET it.
            let api = cl.api(&ar, &caps, objs[0].namespace());
            let mut m = BTreeMap::new();
            for o in &objs {
                if let Some(x) = api.get_opt(o.name()).await.map_err(|e| call_error(cl, e, "get", &ar, o.namespace(), &format!("reading {}", o.display())))? {
                    m.insert(o.name().to_string(), x);
                }
            }
            m
        } else {
            let api = cl.api(&ar, &caps, objs[0].namespace());
            api.list(&ListParams::default())
                .await
                .map_err(|e| call_error(cl, e, "list", &ar, objs[0].namespace(), &format!("reading {}s", ar.kind)))?
                .items
                .into_iter()
                .filter_map(|x| x.metadata.name.clone().map(|n| (n, x)))
                .collect()
        };
        Ok::<_, Error>(objs.into_iter().map(|o| (o, live.get(o.name()).cloned())).collect::<Vec<_>>())
    }))
    .buffer_unordered(APPLY_CONCURRENCY)
    .try_collect::<Vec<_>>()
    .await?;
    let results: Vec<bool> = stream::iter(lists.into_iter().flatten().map(|(o, live)| apply_over(cl, o, live)))
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(changed + results.into_iter().filter(|c| *c).count())
}

/// Requests in flight at once while applying: well under the API server's default
/// per-client limits, enough to hide round trips.
const APPLY_CONCURRENCY: usize = 8;

fn is_policy(o: &Object) -> bool {
    matches!(o.kind(), "EnvoyExtensionPolicy" | "WasmPlugin" | "ClientTrafficPolicy" | "BackendTrafficPolicy")
}

fn webhook_not_ready(e: &kube::Error) -> bool {
    api_status(e).is_some_and(|(code, m)| code >= 500 && m.contains("failed calling webhook"))
}

/// Values, mesh and state together: replicas default to what runs now.
async fn prepare(cl: &Cluster, settings: &Settings, replicas: Option<u32>) -> Result<(Values, crate::template::Mesh, State), Error> {
    let (mut values, mesh) = settings.resolve()?;
    let state = read_state(cl, &values).await?;
    if let Some(r) = replicas.or(settings.replicas).or(state.replicas) {
        values.set("REPLICAS", r.to_string());
    }
    Ok((values, mesh, state))
}

fn replicas_of(v: &Values) -> u32 {
    v.req("REPLICAS").parse().expect("checked by config")
}

pub async fn up(cl: &mut Cluster, settings: &Settings, bundle: Option<&std::path::Path>, w: &WaitArgs) -> Result<(), Error> {
    let (values, mesh) = settings.resolve()?;
    eprintln!("[1/6] Envoy Gateway {} and cert-manager {}", values.req("ENVOY_GATEWAY_VERSION"), values.req("CERT_MANAGER_VERSION"));
    crate::install::ensure(cl, &values, mesh == crate::template::Mesh::EnvoyGateway, bundle, w).await?;
    let cl = &*cl;
    let (values, mesh, mut state) = prepare(cl, settings, None).await?;
    let replicas = replicas_of(&values);
    state.generated.ensure(replicas);
    let filters = Filters::load(&settings.filters_dir())?;
    let objects = render(&Input {
        values: values.clone(),
        mesh,
        generated: &state.generated,
        filters: &filters,
        announce: state.announce.clone(),
    })?;
    // Every kind resolved before anything is applied: a missing CRD stops a run untouched.
    for o in &objects {
        cl.resolve(o)?;
    }
    eprintln!("      ✓ Gateway API, {} and cert-manager APIs are served", mesh.as_str());
    let ns = values.req("NAMESPACE").to_string();
    let name = values.req("NAME").to_string();
    let of = |s: Step| objects.iter().filter(|o| o.step == s).collect::<Vec<_>>();

    let n = apply_all(cl, &of(Step::Identity)).await?;
    eprintln!("[2/6] namespace {ns}, cluster secret, {replicas} peer identities ({n} changed)");

    let n = apply_all(cl, &of(Step::Cluster)).await?;
    eprintln!("[3/6] StatefulSet {name}, headless and API Services, PodDisruptionBudget ({n} changed)");
    wait_statefulset(cl, &ns, &name, replicas, w).await?;

    let n = apply_all(cl, &of(Step::Swarm)).await?;
    eprintln!("[4/6] {replicas} swarm Services ({n} changed)");
    delete_swarm_beyond(cl, &values, replicas).await?;
    let announce = swarm_addresses(cl, &values).await?;
    if announce != state.announce {
        // New public addresses: Kubo announces them after a rolling restart.
        let again = render(&Input { values: values.clone(), mesh, generated: &state.generated, filters: &filters, announce })?;
        let refresh: Vec<&Object> = again
            .iter()
            .filter(|o| (o.kind() == "ConfigMap" && o.name().ends_with("-announce")) || o.kind() == "StatefulSet")
            .collect();
        apply_all(cl, &refresh).await?;
        eprintln!("      ✓ public swarm addresses handed to the pods (rolling restart)");
    }

    let n = apply_all(cl, &of(Step::Edge)).await?;
    eprintln!("[5/6] Gateway, routes, Issuer and Certificate for {} ({n} changed)", values.req("DOMAIN"));

    let filter_objs = of(Step::Filters);
    let (policies, delivery): (Vec<&Object>, Vec<&Object>) = filter_objs
        .into_iter()
        .partition(|o| is_policy(o));
    let n = apply_all(cl, &delivery).await?;
    // The proxies fetch the filters once they are attached: serve them first.
    wait_deployment(cl, &ns, &format!("{name}-filters"), w).await?;
    let m = apply_all(cl, &policies).await?;
    eprintln!("[6/6] filters served in-cluster and attached, traffic policies ({} changed)", n + m);

    crate::status::summary(cl, &values, mesh).await
}

/// `up`'s apply phase alone (the `bench-apply` helper): the same reads, render and applies
/// in the same order, without step 1, waits, announce refresh or summary.
pub async fn bench_apply(cl: &Cluster, settings: &Settings) -> Result<(), Error> {
    let start = std::time::Instant::now();
    let (values, mesh, mut state) = prepare(cl, settings, None).await?;
    state.generated.ensure(replicas_of(&values));
    let filters = Filters::load(&settings.filters_dir())?;
    let objects = render(&Input { values, mesh, generated: &state.generated, filters: &filters, announce: state.announce })?;
    let mut changed = 0;
    for step in [Step::Identity, Step::Cluster, Step::Swarm, Step::Edge, Step::Filters] {
        let of: Vec<&Object> = objects.iter().filter(|o| o.step == step).collect();
        // Step 6 applies the filters' delivery before their attachment, as `up` does.
        let (policies, rest): (Vec<&Object>, Vec<&Object>) = of.into_iter().partition(|o| is_policy(o));
        changed += apply_all(cl, &rest).await?;
        changed += apply_all(cl, &policies).await?;
    }
    println!(
        "{}",
        serde_json::json!({"objects": objects.len(), "changed": changed, "apply_ms": start.elapsed().as_secs_f64() * 1e3})
    );
    Ok(())
}

pub async fn wait_statefulset(cl: &Cluster, ns: &str, name: &str, replicas: u32, w: &WaitArgs) -> Result<(), Error> {
    let api: Api<StatefulSet> = Api::namespaced(cl.client.clone(), ns);
    wait::until(&format!("{replicas} ready peers in StatefulSet {name}"), w, || {
        let api = api.clone();
        async move {
            let s = api.get_opt(name).await.map_err(|e| Error::Rejected { what: "reading the StatefulSet".into(), message: e.to_string() })?;
            let st = s.and_then(|s| s.status).unwrap_or_default();
            let ready = st.ready_replicas.unwrap_or(0) as u32;
            Ok((ready != replicas || st.replicas as u32 != replicas).then(|| format!("{ready}/{replicas} ready")))
        }
    })
    .await
}

pub async fn wait_deployment(cl: &Cluster, ns: &str, name: &str, w: &WaitArgs) -> Result<(), Error> {
    let api: Api<Deployment> = Api::namespaced(cl.client.clone(), ns);
    wait::until(&format!("Deployment {name} available"), w, || {
        let api = api.clone();
        async move {
            let d = api.get_opt(name).await.map_err(|e| Error::Rejected { what: "reading the Deployment".into(), message: e.to_string() })?;
            let Some(d) = d else { return Ok(Some("not created yet".into())) };
            let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            let st = d.status.unwrap_or_default();
            let avail = st.available_replicas.unwrap_or(0);
            let updated = st.updated_replicas.unwrap_or(0);
            Ok((avail < want || updated < want).then(|| format!("{avail}/{want} available, {updated} updated")))
        }
    })
    .await
}

async fn delete_swarm_beyond(cl: &Cluster, v: &Values, replicas: u32) -> Result<usize, Error> {
    let name = v.req("NAME");
    let svcs: Api<Service> = Api::namespaced(cl.client.clone(), v.req("NAMESPACE"));
    let list = svcs.list(&swarm_selector(name)).await.map_err(|e| Error::Rejected { what: "listing swarm Services".into(), message: e.to_string() })?;
    let mut n = 0;
    for s in list {
        let sname = s.metadata.name.unwrap_or_default();
        let ord: Option<u32> = sname.strip_prefix(&format!("{name}-swarm-")).and_then(|o| o.parse().ok());
        if ord.is_some_and(|o| o >= replicas) {
            svcs.delete(&sname, &DeleteParams::default()).await.map_err(|e| Error::Rejected { what: format!("deleting Service {sname}"), message: e.to_string() })?;
            n += 1;
        }
    }
    Ok(n)
}

/// The objects' names only (no filters, no real secrets needed).
fn render_names(values: &Values, mesh: crate::template::Mesh, replicas: u32) -> Result<Vec<Object>, Error> {
    let mut g = Generated::default();
    g.ensure(replicas);
    render(&Input { values: values.clone(), mesh, generated: &g, filters: &Filters::placeholder(), announce: BTreeMap::new() })
}

pub async fn scale(cl: &Cluster, settings: &Settings, replicas: u32, w: &WaitArgs) -> Result<(), Error> {
    if !(1..=64).contains(&replicas) {
        return Err(Error::Usage("replicas must be from 1 to 64".into()));
    }
    let (values, mesh, mut state) = prepare(cl, settings, Some(replicas)).await?;
    let ns = values.req("NAMESPACE").to_string();
    let name = values.req("NAME").to_string();
    let sts: Api<StatefulSet> = Api::namespaced(cl.client.clone(), &ns);
    if sts.get_opt(&name).await.ok().flatten().is_none() {
        return Err(Error::Usage(format!("no StatefulSet {name} in namespace {ns}: run `deployer up` first")));
    }
    state.generated.ensure(replicas);
    let objects = render(&Input {
        values: values.clone(),
        mesh,
        generated: &state.generated,
        filters: &Filters::placeholder(),
        announce: state.announce.clone(),
    })?;
    // Identities first (new peers need theirs at start), then the peers, then their Services.
    let pick = |f: &dyn Fn(&Object) -> bool| objects.iter().filter(|o| f(o)).collect::<Vec<_>>();
    apply_all(cl, &pick(&|o| o.kind() == "Secret" && o.name().ends_with("-identities"))).await?;
    apply_all(cl, &pick(&|o| o.kind() == "StatefulSet")).await?;
    apply_all(cl, &pick(&|o| o.step == Step::Swarm)).await?;
    let removed = delete_swarm_beyond(cl, &values, replicas).await?;
    eprintln!("scaled {name} to {replicas} peers ({removed} swarm Services removed)");
    wait_statefulset(cl, &ns, &name, replicas, w).await
}

pub async fn down(cl: &Cluster, settings: &Settings, purge: bool, confirm: Option<String>, w: &WaitArgs) -> Result<(), Error> {
    let (values, mesh, state) = prepare(cl, settings, None).await?;
    let ns = values.req("NAMESPACE").to_string();
    if purge {
        confirm_purge(&ns, confirm)?;
    }
    let objects = render_names(&values, mesh, state.replicas.unwrap_or(1))?;
    let mut deleted = 0;
    for o in objects.iter().rev() {
        // Kept: the namespace and the secrets (and the StatefulSet's volumes, which
        // Kubernetes keeps); shared: the GatewayClass other Gateways may use.
        if matches!(o.kind(), "Namespace" | "Secret" | "GatewayClass") || o.step == Step::Swarm {
            continue;
        }
        let Ok((ar, caps)) = cl.resolve(o) else { continue };
        let api = cl.api(&ar, &caps, o.namespace());
        match api.delete(o.name(), &DeleteParams::background()).await {
            Ok(_) => deleted += 1,
            Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => {}
            Err(e) => return Err(call_error(cl, e, "delete", &ar, o.namespace(), &format!("deleting {}", o.display()))),
        }
    }
    deleted += delete_swarm_beyond(cl, &values, 0).await?;
    eprintln!("deleted {deleted} objects from namespace {ns}");
    if purge {
        let nss: Api<Namespace> = Api::all(cl.client.clone());
        match nss.delete(&ns, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if api_status(&e).is_some_and(|(c, _)| c == 404) => {}
            Err(e) => {
                return Err(match api_status(&e) {
                    Some((403, message)) => Error::Forbidden { verb: "delete".into(), resource: "namespaces".into(), ns: String::new(), message },
                    _ => Error::Rejected { what: format!("deleting namespace {ns}"), message: e.to_string() },
                })
            }
        }
        wait::until(&format!("namespace {ns} (volumes, secrets) to be gone"), w, || {
            let nss = nss.clone();
            let ns = ns.clone();
            async move {
                match nss.get_opt(&ns).await {
                    Ok(None) => Ok(None),
                    Ok(Some(_)) => Ok(Some("terminating".into())),
                    Err(e) => Err(Error::Rejected { what: "reading the namespace".into(), message: e.to_string() }),
                }
            }
        })
        .await?;
        eprintln!("purged namespace {ns}: volumes and secrets are gone");
    } else {
        eprintln!("kept: namespace {ns}, its volumes (PersistentVolumeClaims) and the cluster secret and identities; `down --purge` removes them");
    }
    Ok(())
}

fn confirm_purge(ns: &str, confirm: Option<String>) -> Result<(), Error> {
    if let Some(c) = confirm {
        return if c == ns { Ok(()) } else { Err(Error::Aborted(format!("--yes-delete-namespace {c:?} is not the namespace {ns:?}"))) };
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Aborted(format!(
            "--purge deletes namespace {ns} with all pinned data; confirm with --yes-delete-namespace {ns}"
        )));
    }
    eprint!("--purge deletes namespace {ns} with its volumes (all pinned data) and secrets.\nType the namespace name to confirm: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| Error::Aborted(e.to_string()))?;
    if line.trim() == ns { Ok(()) } else { Err(Error::Aborted("the typed name did not match".into())) }
}

