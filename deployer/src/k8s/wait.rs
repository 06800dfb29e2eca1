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
}

impl Default for WaitArgs {
    fn default() -> Self {
        WaitArgs { timeout: 600, no_wait: false }
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

/// What a Deployment's rollout still lacks (`None`: done).
pub fn deployment_pending(d: Option<&Deployment>) -> Option<String> {
    let Some(d) = d else { return Some("not created yet".into()) };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let avail = st.available_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    (avail < want || updated < want).then(|| format!("{avail}/{want} available, {updated} updated"))
}

/// What a StatefulSet still lacks for `replicas` ready peers (`None`: done).
pub fn statefulset_pending(s: Option<&StatefulSet>, replicas: u32) -> Option<String> {
    let st = s.and_then(|s| s.status.clone()).unwrap_or_default();
    let ready = st.ready_replicas.unwrap_or(0) as u32;
    (ready != replicas || st.replicas as u32 != replicas).then(|| format!("{ready}/{replicas} ready"))
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
