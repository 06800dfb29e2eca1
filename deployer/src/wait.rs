//! Waiting with visible progress: a spinner that says what it waits for and what it sees.

use crate::errors::Error;
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
