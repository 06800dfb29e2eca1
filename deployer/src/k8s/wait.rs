//! Waiting with visible progress: a spinner that says what it waits for and what it sees;
//! the rollouts and conditions the commands wait for.

use super::Cluster;
use crate::errors::Error;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Seconds to wait for each step (pods ready, rollouts, deletions) before giving up.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Apply and return without waiting for readiness.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds `up` waits for the platform to give the swarm Services public addresses;
    /// past that it says what to run once they arrive (not an error).
    #[arg(long, default_value_t = 180, value_name = "SECONDS")]
    pub address_timeout: u64,
    /// Seconds `up` waits at its end for the controllers (Envoy Gateway or Istio,
    /// cert-manager) to judge what it applied; past that it says which objects none has
    /// judged yet (not an error).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub controller_timeout: u64,
}

impl Default for WaitArgs {
    fn default() -> Self {
        WaitArgs { timeout: 600, no_wait: false, address_timeout: 180, controller_timeout: 60 }
    }
}

pub fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"));
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message(msg);
    pb
}

/// Polls `check` until it returns `Ok(None)` (done); `Ok(Some(state))` is shown as progress.
pub async fn until<F, Fut>(what: &str, args: &WaitArgs, mut check: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<String>, Error>>,
{
    if args.no_wait {
        return Ok(());
    }
    let pb = spinner(format!("waiting for {what}"));
    let start = Instant::now();
    let mut last;
    loop {
        match check().await? {
            None => {
                pb.finish_with_message(format!("✓ {what}"));
                return Ok(());
            }
            Some(state) => {
                pb.set_message(format!("waiting for {what}: {state}"));
                last = state;
            }
        }
        if start.elapsed() >= Duration::from_secs(args.timeout) {
            pb.abandon_with_message(format!("✗ {what}"));
            return Err(Error::Timeout {
                what: what.to_string(),
                seconds: args.timeout,
                last: if last.is_empty() { last } else { format!(" (last seen: {last})") },
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a Deployment's rollout still lacks (`None`: done), as `kubectl rollout status`
/// judges it: the controller has seen the current spec (observedGeneration), every pod is
/// of the new template (updated), no pod of an old ReplicaSet is left, and all are
/// available. Without the first, the status of the previous generation passes at once.
pub fn deployment_pending(d: Option<&Deployment>) -> Option<String> {
    let Some(d) = d else { return Some("not created yet".into()) };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let generation = d.metadata.generation.unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    let observed = st.observed_generation.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let avail = st.available_replicas.unwrap_or(0);
    if observed < generation {
        Some(format!("the controller has not seen generation {generation} yet"))
    } else if updated < want {
        Some(format!("{updated}/{want} pods updated"))
    } else if total > updated {
        Some(format!("{} old pods still running", total - updated))
    } else if avail < want {
        Some(format!("{avail}/{want} available"))
    } else {
        None
    }
}

/// What a StatefulSet still lacks for `replicas` ready peers of its current template
/// (`None`: done): the controller has seen the spec, every pod is at the update revision
/// (currentRevision == updateRevision), and all are ready.
pub fn statefulset_pending(s: Option<&StatefulSet>, replicas: u32) -> Option<String> {
    let Some(s) = s else { return Some("not created yet".into()) };
    let generation = s.metadata.generation.unwrap_or(0);
    let st = s.status.clone().unwrap_or_default();
    let ready = st.ready_replicas.unwrap_or(0) as u32;
    let updated = st.updated_replicas.unwrap_or(0) as u32;
    if st.observed_generation.unwrap_or(0) < generation {
        Some(format!("the controller has not seen generation {generation} yet"))
    } else if st.replicas as u32 != replicas || ready != replicas {
        Some(format!("{ready}/{replicas} ready"))
    } else if st.current_revision != st.update_revision || updated != replicas {
        Some(format!("{updated}/{replicas} pods at the new revision"))
    } else {
        None
    }
}

pub async fn deployment(cl: &Cluster, ns: &str, name: &str, w: &WaitArgs) -> Result<(), Error> {
    until(&format!("Deployment {name} available"), w, || async move {
        Ok(deployment_pending(super::read::get::<Deployment>(cl, Some(ns), name).await?.as_ref()))
    })
    .await
}

pub async fn statefulset(cl: &Cluster, ns: &str, name: &str, replicas: u32, w: &WaitArgs) -> Result<(), Error> {
    until(&format!("{replicas} ready peers in StatefulSet {name}"), w, || async move {
        Ok(statefulset_pending(super::read::get::<StatefulSet>(cl, Some(ns), name).await?.as_ref(), replicas))
    })
    .await
}

/// CRDs become Established within a second: no --no-wait shortcut, later steps need them.
pub async fn established(cl: &Cluster, names: &[String], w: &WaitArgs) -> Result<(), Error> {
    let w = WaitArgs { no_wait: false, ..w.clone() };
    until(&format!("{} CRDs to be established", names.len()), &w, || async move {
        let list = super::read::list_gvk(cl, ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"), "customresourcedefinitions").await?;
        let established = |n: &String| {
            list.iter().any(|c| {
                c.metadata.name.as_ref() == Some(n)
                    && c.data["status"]["conditions"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|x| x["type"] == "Established" && x["status"] == "True"))
            })
        };
        let missing = names.iter().filter(|n| !established(n)).count();
        Ok((missing > 0).then(|| format!("{missing} not yet")))
    })
    .await
}

/// Until the namespace is gone (its finalizers have removed what it held).
pub async fn namespace_gone(cl: &Cluster, ns: &str, w: &WaitArgs) -> Result<(), Error> {
    until(&format!("namespace {ns} (volumes, secrets) to be gone"), w, || async move {
        let got = super::read::get::<k8s_openapi::api::core::v1::Namespace>(cl, None, ns).await?;
        Ok(got.map(|_| "terminating".to_string()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "f", "generation": generation}, "spec": {"replicas": 2,
            "selector": {}, "template": {}}, "status": status}))
        .unwrap()
    }

    #[test]
    fn a_deployment_is_rolled_out_only_when_every_old_pod_is_gone() {
        let done = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert_eq!(deployment_pending(Some(&deployment(2, done.clone()))), None);
        // The previous generation's status, all available: not done.
        let stale = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert!(deployment_pending(Some(&deployment(2, stale))).unwrap().contains("generation 2"));
        // New pods up, an old one still serving.
        let old = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 3});
        assert!(deployment_pending(Some(&deployment(2, old))).unwrap().contains("1 old pods"));
        let unavailable = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1});
        assert!(deployment_pending(Some(&deployment(2, unavailable))).is_some());
        assert!(deployment_pending(None).is_some());
    }

    fn statefulset(generation: i64, status: serde_json::Value) -> StatefulSet {
        serde_json::from_value(json!({"metadata": {"name": "p", "generation": generation}, "spec": {"replicas": 3,
            "selector": {}, "serviceName": "p", "template": {}}, "status": status}))
        .unwrap()
    }

    #[test]
    fn a_statefulset_is_ready_only_at_its_update_revision() {
        let done = json!({"observedGeneration": 4, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "p-2", "updateRevision": "p-2"});
        assert_eq!(statefulset_pending(Some(&statefulset(4, done.clone())), 3), None);
        let stale = json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "p-1", "updateRevision": "p-1"});
        assert!(statefulset_pending(Some(&statefulset(4, stale)), 3).is_some());
        // Ready, but one pod still of the old revision.
        let rolling = json!({"observedGeneration": 4, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2,
            "currentRevision": "p-1", "updateRevision": "p-2"});
        assert!(statefulset_pending(Some(&statefulset(4, rolling)), 3).unwrap().contains("new revision"));
        assert!(statefulset_pending(Some(&statefulset(4, done)), 5).is_some());
    }
}
