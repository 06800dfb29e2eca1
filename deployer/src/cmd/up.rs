//! `up`: every step in order, waiting for each (deployer/README.md, "What `up` does").

use super::state::{self, State};
use crate::config::{Plan, SwarmServiceType};
use crate::errors::Error;
use crate::k8s::apply::apply_all;
use crate::k8s::wait::{self, WaitArgs};
use crate::k8s::{read, Cluster};
use crate::render::{render, Filters, Input, Object};
use crate::template::Step;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::Value;
use std::collections::BTreeMap;

/// The policies: step 5 applies its own (the client's `x-ipfs-edge-backend` removed by the
/// ClientTrafficPolicy or the Istio TrafficExtension) before the routes, so no route is ever
/// served while a client can still set the mark; step 6 applies its own after the filters'
/// delivery.
pub fn is_policy(o: &Object) -> bool {
    matches!(o.kind(), "EnvoyExtensionPolicy" | "WasmPlugin" | "ClientTrafficPolicy" | "BackendTrafficPolicy" | "TrafficExtension")
}

pub fn values<'a>(objs: impl IntoIterator<Item = &'a Object>) -> Vec<&'a Value> {
    objs.into_iter().map(|o| &o.value).collect()
}

/// The plan settled on the cluster's state and the objects rendered from it.
async fn rendered(cl: &Cluster, plan: &mut Plan) -> Result<(State, Filters, Vec<Object>), Error> {
    let mut state = state::prepare(cl, plan).await?;
    state.new_tokens = state.generated.api_tokens.is_none();
    state::keep_running_router(cl, plan).await?;
    state.generated.ensure(plan.replicas);
    let filters = Filters::load(&plan.filters_dir)?;
    let objects = render(&Input { plan, generated: &state.generated, filters: &filters, announce: state.announce.clone() })?;
    Ok((state, filters, served(cl, objects)))
}

/// The objects without those of an add-on kind the cluster does not serve (the Prometheus
/// Operator's PodMonitor), each named once: `up` installs no monitoring stack, and a
/// missing add-on is no reason to stop.
fn served(cl: &Cluster, objects: Vec<Object>) -> Vec<Object> {
    objects
        .into_iter()
        .filter(|o| {
            let keep = !o.if_served || cl.resolve(&o.value).is_ok();
            if !keep {
                let api = o.value["apiVersion"].as_str().unwrap_or_default();
                eprintln!("      - {} {} left out: the cluster does not serve {api} (no Prometheus Operator)", o.kind(), o.name());
            }
            keep
        })
        .collect()
}

pub async fn up(cl: &mut Cluster, mut plan: Plan, bundle: Option<&std::path::Path>, skip_crds: bool, w: &WaitArgs) -> Result<(), Error> {
    eprintln!("[1/6] Envoy Gateway {} and cert-manager {}", plan.envoy_gateway_version, plan.cert_manager_version);
    super::install::ensure(cl, &plan, bundle, skip_crds, w).await?;
    let cl = &*cl;
    let (state, filters, objects) = rendered(cl, &mut plan).await?;
    // Every kind resolved before anything is applied: a missing CRD stops a run untouched.
    for o in &objects {
        cl.resolve(&o.value)?;
    }
    eprintln!("      ✓ Gateway API, {} and cert-manager APIs are served", plan.mesh.as_str());
    let (ns, name, replicas) = (plan.namespace.clone(), plan.name.clone(), plan.replicas);
    let of = |s: Step| values(objects.iter().filter(|o| o.step == s));

    let n = apply_all(cl, &of(Step::Identity)).await?;
    eprintln!("[2/6] namespace {ns}, cluster secret, {replicas} peer identities ({n} changed)");

    let n = apply_all(cl, &of(Step::Cluster)).await?;
    eprintln!("[3/6] StatefulSet {name}, headless and API Services, PodDisruptionBudget ({n} changed)");
    wait::statefulset(cl, &ns, &name, replicas, w).await?;

    let n = apply_all(cl, &of(Step::Swarm)).await?;
    eprintln!("[4/6] {replicas} swarm Services ({n} changed)");
    state::delete_swarm_beyond(cl, &plan, replicas).await?;
    let announce = await_addresses(cl, &plan, w).await?;
    if announce != state.announce {
        // New public addresses: Kubo announces them after a rolling restart.
        let again = render(&Input { plan: &plan, generated: &state.generated, filters: &filters, announce })?;
        let refresh = values(
            again.iter().filter(|o| (o.kind() == "ConfigMap" && o.name().ends_with("-announce")) || o.kind() == "StatefulSet"),
        );
        apply_all(cl, &refresh).await?;
        eprintln!("      ✓ public swarm addresses handed to the pods (rolling restart)");
    }

    let (policies, routes): (Vec<&Object>, Vec<&Object>) =
        objects.iter().filter(|o| o.step == Step::Edge).partition(|o| is_policy(o));
    let n = apply_all(cl, &values(policies)).await? + apply_all(cl, &values(routes)).await?;
    eprintln!("[5/6] Gateway, routes, Issuer and Certificate for {} ({n} changed)", plan.domain);
    // What an earlier configuration made and this one has not: the native read route where
    // the router's gateway is no longer public, the probes route where health now needs its
    // filter, or the filter's HTTP policy where Envoy now answers probes itself.
    for gone in state::delete_left_out(cl, &plan, &objects).await? {
        eprintln!("      ✓ {gone} deleted: this configuration has none");
    }

    let (policies, delivery): (Vec<&Object>, Vec<&Object>) =
        objects.iter().filter(|o| o.step == Step::Filters).partition(|o| is_policy(o));
    let n = apply_all(cl, &values(delivery)).await?;
    // The policies pin the filters' SHA-256 and the proxies fetch them once attached: every
    // server pod must serve the new bytes first (a pod of the old template would fail every
    // route with a checksum error). New bytes change the pod template, so that is the
    // rollout with no old pod left.
    let server = format!("{name}-filters");
    let still = if w.no_wait {
        wait::deployment_pending(read::get::<Deployment>(cl, Some(&ns), &server).await?.as_ref())
    } else {
        wait::deployment(cl, &ns, &server, w).await?;
        None
    };
    if let Some(still) = still {
        eprintln!("[6/6] filters delivered ({n} changed); not attached: the filter server is rolling out ({still}); rerun `deployer up` once it has");
    } else {
        let m = apply_all(cl, &values(policies)).await?;
        eprintln!("[6/6] filters served in-cluster and attached, traffic policies ({} changed)", n + m);
    }

    await_verdicts(cl, &plan, w).await?;
    super::status::summary(cl, &plan).await?;
    if state.new_tokens {
        let admin = crate::identity::ADMIN_TOKEN;
        eprintln!(
            "\nAPI token {admin:?} created for writes (add, pin) as `Authorization: Bearer <token>`; read it with:\n  {}\n\
             `deployer token create NAME` makes more, `deployer token revoke {admin}` retires it.",
            super::token::read_command(&plan, admin)
        );
    }
    Ok(())
}

/// Until every controller has judged what was applied (bounded by `--controller-timeout`,
/// with progress): the summary then tells the controllers' verdicts, not "no status yet".
/// Past the bound, which objects none has judged (a controller not running, or slow).
async fn await_verdicts(cl: &Cluster, plan: &Plan, w: &WaitArgs) -> Result<(), Error> {
    let bounded = WaitArgs { timeout: w.controller_timeout, ..w.clone() };
    let waited = wait::until("the controllers' verdicts on the Gateway, routes, policies and Certificate", &bounded, || async move {
        let objects = super::status::objects(cl, plan).await?;
        let open: Vec<String> = objects.iter().filter(|o| !o.judged).map(|o| format!("{} {}", o.kind, o.name)).collect();
        Ok((!open.is_empty()).then(|| format!("{} not judged yet: {}", open.len(), open.join(", "))))
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Error::Timeout { last, .. }) => {
            eprintln!("      … no controller has judged everything after {} s{last}", w.controller_timeout);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The swarm Services' public addresses, waited for (bounded, with progress) until every
/// pod has them; past `--address-timeout` what there is, and what to run once the rest
/// arrive.
async fn await_addresses(cl: &Cluster, plan: &Plan, w: &WaitArgs) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let what = format!("public swarm addresses of {} pods", plan.replicas);
    let bounded = WaitArgs { timeout: w.address_timeout, ..w.clone() };
    let waited = wait::until(&what, &bounded, || async move {
        let addrs = state::swarm_addresses(cl, plan).await?;
        let n = state::pods_with_addresses(plan, &addrs);
        Ok((n < plan.replicas).then(|| format!("{n}/{} have them", plan.replicas)))
    })
    .await;
    match waited {
        Ok(()) | Err(Error::Timeout { .. }) => {}
        Err(e) => return Err(e),
    }
    let addrs = state::swarm_addresses(cl, plan).await?;
    let n = state::pods_with_addresses(plan, &addrs);
    if n < plan.replicas {
        let (ns, name) = (&plan.namespace, &plan.name);
        let look = match plan.swarm_service_type {
            SwarmServiceType::LoadBalancer => format!(
                "`kubectl -n {ns} get svc -l app.kubernetes.io/instance={name},app.kubernetes.io/component=swarm` shows an EXTERNAL-IP for each"
            ),
            SwarmServiceType::NodePort => format!(
                "`kubectl -n {ns} get pods -o wide -l app.kubernetes.io/instance={name}` shows each pod on a node with an ExternalIP (`kubectl get nodes -o wide`)"
            ),
        };
        eprintln!("      … {} of {} pods have no public swarm address yet: when {look}, run `deployer up` again (it hands them to the pods)", plan.replicas - n, plan.replicas);
    }
    Ok(addrs)
}

/// `up`'s apply phase alone (the `bench-apply` helper): the same reads, render and applies
/// in the same order, without step 1, waits, announce refresh or summary.
pub async fn bench_apply(cl: &Cluster, mut plan: Plan) -> Result<(), Error> {
    let start = std::time::Instant::now();
    let (_, _, objects) = rendered(cl, &mut plan).await?;
    let mut changed = 0;
    for step in [Step::Identity, Step::Cluster, Step::Swarm, Step::Edge, Step::Filters] {
        // Step 5 applies its policies before the routes, step 6 the filters' delivery before
        // their attachment, as `up` does.
        let (policies, rest): (Vec<&Object>, Vec<&Object>) =
            objects.iter().filter(|o| o.step == step).partition(|o| is_policy(o));
        let (first, then) = if step == Step::Edge { (policies, rest) } else { (rest, policies) };
        changed += apply_all(cl, &values(first)).await?;
        changed += apply_all(cl, &values(then)).await?;
    }
    println!(
        "{}",
        serde_json::json!({"objects": objects.len(), "changed": changed, "apply_ms": start.elapsed().as_secs_f64() * 1e3})
    );
    Ok(())
}
