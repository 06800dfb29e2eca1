//! The one server-side apply path: every object the deployer writes (its own and the
//! release manifests of step 1) goes through `apply_all`, with one field manager, `force`,
//! the no-op check (`noop`) and the retries of `error::retrying`.

use super::error::{retrying, Call};
use super::Cluster;
use crate::errors::Error;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;
use std::collections::BTreeMap;

/// The one field manager of every apply: a rerun owns exactly what it owned before.
pub const FIELD_MANAGER: &str = "ipfs-edge-deployer";

/// Requests in flight at once while applying: well under the API server's default
/// per-client limits, enough to hide round trips.
const APPLY_CONCURRENCY: usize = 8;

/// A live object as the deployer last applied it (`noop::as_applied` for `FIELD_MANAGER`):
/// change one field of it and `apply_all` writes that field alone, every other field keeping
/// its value and its owner. `None`: the deployer never applied it.
pub fn as_applied(live: &Value) -> Option<Value> {
    super::noop::as_applied(live, FIELD_MANAGER)
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(o: &Value) -> Option<&str> {
    o["metadata"]["namespace"].as_str()
}

/// Server-side apply of one object, with the live object (or its absence) already read;
/// returns whether the server changed it. No write is sent when the live object shows the
/// apply would change nothing.
async fn apply_over(cl: &Cluster, o: &Value, live: Option<DynamicObject>) -> Result<bool, Error> {
    let (ar, caps) = cl.resolve(o)?;
    let api = cl.api(&ar, &caps, namespace(o));
    let body = o.clone();
    if let Some(live) = &live {
        let live = serde_json::to_value(live).map_err(|e| Error::Local(format!("cannot read {}: {e}", super::display(o))))?;
        if !super::noop::would_change(&live, &body, FIELD_MANAGER) {
            return Ok(false);
        }
    }
    let before = live.and_then(|x| x.metadata.resource_version);
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&body);
    let after = retrying(|| api.patch(name(o), &pp, &patch))
        .await
        .map_err(|e| cl.error(e, &Call::new("patch", &ar, namespace(o), format!("applying {}", super::display(o)))))?;
    Ok(before != after.metadata.resource_version)
}

/// Applies objects that do not depend on each other, except that namespaces come first
/// (the rest may live in them); returns how many the server changed. The live state is
/// read with one LIST per kind and namespace rather than one GET per object.
pub async fn apply_all(cl: &Cluster, objects: &[&Value]) -> Result<usize, Error> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let (namespaces, rest): (Vec<&Value>, Vec<&Value>) = objects.iter().partition(|o| o["kind"] == "Namespace");
    let mut changed = 0;
    for o in namespaces {
        let live = read_live(cl, &[o]).await?;
        changed += apply_over(cl, o, live.into_iter().next().and_then(|(_, l)| l)).await? as usize;
    }
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<&Value>> = BTreeMap::new();
    for o in rest {
        let (ar, _) = cl.resolve(o)?;
        groups.entry((ar.api_version.clone(), ar.kind.clone(), namespace(o).map(str::to_string))).or_default().push(o);
    }
    let lists = stream::iter(groups.into_values().map(|objs| async move { read_live(cl, &objs).await }))
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let results: Vec<bool> = stream::iter(lists.into_iter().flatten().map(|(o, live)| apply_over(cl, o, live)))
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(changed + results.into_iter().filter(|c| *c).count())
}

/// The live objects of one kind and namespace.
async fn read_live<'a>(cl: &Cluster, objs: &[&'a Value]) -> Result<Vec<(&'a Value, Option<DynamicObject>)>, Error> {
    let (ar, caps) = cl.resolve(objs[0])?;
    let ns = namespace(objs[0]);
    let api = cl.api(&ar, &caps, ns);
    let live: BTreeMap<String, DynamicObject> = if objs.len() == 1 || caps.scope == kube::discovery::Scope::Cluster {
        // One object (or cluster-scoped: a LIST would read the whole cluster): GET it.
        let mut m = BTreeMap::new();
        for o in objs {
            let got = retrying(|| api.get_opt(name(o)))
                .await
                .map_err(|e| cl.error(e, &Call::new("get", &ar, ns, format!("reading {}", super::display(o)))))?;
            if let Some(x) = got {
                m.insert(name(o).to_string(), x);
            }
        }
        m
    } else {
        let lp = ListParams::default();
        retrying(|| api.list(&lp))
            .await
            .map_err(|e| cl.error(e, &Call::new("list", &ar, ns, format!("reading {}s", ar.kind))))?
            .items
            .into_iter()
            .filter_map(|x| x.metadata.name.clone().map(|n| (n, x)))
            .collect()
    };
    Ok(objs.iter().map(|o| (*o, live.get(name(o)).cloned())).collect())
}
