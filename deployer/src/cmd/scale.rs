//! `scale N`: the identities, the StatefulSet and the swarm Services together.

use super::state;
use super::up::values;
use crate::config::Plan;
use crate::errors::Error;
use crate::k8s::apply::apply_all;
use crate::k8s::wait::{self, WaitArgs};
use crate::k8s::{read, Cluster};
use crate::render::{render, Filters, Input, Object};
use crate::template::Step;
use k8s_openapi::api::apps::v1::StatefulSet;

pub async fn scale(cl: &Cluster, mut plan: Plan, replicas: u32, w: &WaitArgs) -> Result<(), Error> {
    plan.set_replicas(replicas)?;
    let mut state = state::prepare(cl, &mut plan).await?;
    let (ns, name) = (plan.namespace.clone(), plan.name.clone());
    if read::get::<StatefulSet>(cl, Some(&ns), &name).await?.is_none() {
        return Err(Error::Usage(format!("no StatefulSet {name} in namespace {ns}: run `deployer up` first")));
    }
    state.generated.ensure(replicas);
    let objects = render(&Input {
        plan: &plan,
        generated: &state.generated,
        filters: &Filters::placeholder(),
        announce: state.announce.clone(),
    })?;
    // Identities first (new peers need theirs at start), then the peers, then their Services.
    let pick = |f: &dyn Fn(&Object) -> bool| values(objects.iter().filter(|o| f(o)));
    apply_all(cl, &pick(&|o| o.kind() == "Secret" && o.name().ends_with("-identities"))).await?;
    apply_all(cl, &pick(&|o| o.kind() == "StatefulSet")).await?;
    apply_all(cl, &pick(&|o| o.step == Step::Swarm)).await?;
    let removed = state::delete_swarm_beyond(cl, &plan, replicas).await?;
    eprintln!("scaled {name} to {replicas} peers ({removed} swarm Services removed)");
    wait::statefulset(cl, &ns, &name, replicas, w).await
}
