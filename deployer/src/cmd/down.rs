//! `down`: what `up` made, removed in reverse order; volumes and secrets stay unless purged.

use super::state;
use crate::config::Plan;
use crate::errors::Error;
use crate::identity::Generated;
use crate::k8s::wait::{self, WaitArgs};
use crate::k8s::{read, Cluster};
use crate::render::{render, Filters, Input};
use crate::template::Step;
use k8s_openapi::api::core::v1::Namespace;
use std::collections::BTreeMap;
use std::io::IsTerminal;

pub async fn down(cl: &Cluster, mut plan: Plan, purge: bool, confirm: Option<String>, w: &WaitArgs) -> Result<(), Error> {
    state::prepare(cl, &mut plan).await?;
    let ns = plan.namespace.clone();
    if purge {
        confirm_purge(&ns, confirm)?;
    }
    // The objects' names only: no filters, no real secrets needed.
    let mut g = Generated::default();
    g.ensure(plan.replicas);
    let objects = render(&Input { plan: &plan, generated: &g, filters: &Filters::placeholder(), announce: BTreeMap::new() })?;
    let mut deleted = 0;
    for o in objects.iter().rev() {
        // Kept: the namespace and the secrets (and the StatefulSet's volumes, which
        // Kubernetes keeps); shared: the GatewayClass other Gateways may use.
        if matches!(o.kind(), "Namespace" | "Secret" | "GatewayClass") || o.step == Step::Swarm {
            continue;
        }
        deleted += read::delete_object(cl, &o.value).await? as usize;
    }
    deleted += state::delete_swarm_beyond(cl, &plan, 0).await?;
    // Those an earlier configuration made, if this one renders none.
    deleted += state::delete_left_out(cl, &plan, &objects).await?.len();
    eprintln!("deleted {deleted} objects from namespace {ns}");
    if purge {
        read::delete::<Namespace>(cl, None, &ns).await?;
        wait::namespace_gone(cl, &ns, w).await?;
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
