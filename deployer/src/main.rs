//! `deployer`: IPFS Cluster (Kubo + ipfs-cluster) on Kubernetes behind one hostname.
//! See deployer/README.md for the commands, exit codes and design.

mod cmd;
mod config;
#[cfg(test)]
mod edge_tests;
mod errors;
mod identity;
mod k8s;
mod render;
#[cfg(test)]
mod schema_tests;
mod template;
mod values;

use clap::{Parser, Subcommand};
use cmd::status;
use config::Settings;
use k8s::wait;
use errors::Error;
use std::path::PathBuf;

const ABOUT: &str = "Puts IPFS Cluster (Kubo + ipfs-cluster) on Kubernetes behind one HTTPS hostname, \
with Envoy Gateway (or Istio) running the project's three Wasm filters.";

const LONG_ABOUT: &str = "Puts IPFS Cluster (Kubo + ipfs-cluster) on Kubernetes behind one HTTPS hostname, \
with Envoy Gateway (or Istio) running the project's three Wasm filters.

Every object comes from the templates in manifests/kubernetes/ (usable without this tool).

Start here:
  deployer render --domain ipfs.example.org            # see every object, no cluster needed
  deployer up --domain ipfs.example.org --acme-email you@example.org
  deployer status
  deployer scale 5
  deployer token create ci                             # a bearer token for writes (add, pin)
  deployer down                                        # keeps volumes and the cluster secret

Exit codes: 0 ok, 2 usage, 3 local files, 4 kubeconfig, 5 cluster unreachable, 6 forbidden,
7 CRD missing (or cert-manager without Gateway API support), 8 wait timed out, 9 refused by the API server, 10 aborted.";

#[derive(Parser)]
// A flag given twice: the last wins (as in ripgrep), so a wrapper's defaults can be overridden.
#[command(name = "deployer", version, about = ABOUT, long_about = LONG_ABOUT, args_override_self = true)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    target: k8s::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every object as YAML (or write one file per object with --out); no cluster needed.
    ///
    /// Secrets are freshly generated on each render (`up` keeps the cluster's).
    Render {
        /// Write NN-kind-name.yaml files into DIR instead of stdout.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Install or update everything, in order, waiting for each step.
    ///
    /// Server-side apply with one field manager: running it again changes nothing, and an
    /// interrupted run converges when run again.
    Up {
        /// Read the Envoy Gateway and cert-manager release manifests from DIR
        /// (envoy-gateway-<version>.yaml, cert-manager-<version>.yaml) instead of downloading
        /// them: for clusters without internet access.
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// Apply none of the CRDs of Envoy Gateway's and cert-manager's release manifests:
        /// you manage them (they must be in the cluster). CRDs another manager owns are
        /// left alone anyway.
        #[arg(long)]
        skip_crds: bool,
        #[command(flatten)]
        wait: wait::WaitArgs,
    },
    /// Pods, peers each cluster peer sees, swarm addresses, certificate, filters, URLs.
    Status {
        /// `text` for people, `json` for scripts.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: status::Output,
    },
    /// Remove what `up` made, in reverse order. Volumes and the cluster secret stay.
    Down {
        /// Also delete the namespace with the volumes (all pinned data) and the secrets.
        /// Asks for the namespace name to be typed, unless --yes-delete-namespace NAME.
        #[arg(long)]
        purge: bool,
        /// Confirms --purge without a prompt (must equal the namespace).
        #[arg(long, value_name = "NAMESPACE")]
        yes_delete_namespace: Option<String>,
        #[command(flatten)]
        wait: wait::WaitArgs,
    },
    /// Benchmark helper (deployer/README.md, BENCHMARKS.md): only `up`'s apply phase, steps
    /// 2-6 in order with no install, no waits and no summary; prints a JSON line.
    #[command(hide = true)]
    BenchApply,
    /// Bearer tokens for writes through the edge (add, pin): create, list, revoke.
    ///
    /// Tokens live in the Secret <NAME>-api-tokens; the router's policy holds only their
    /// SHA-256, so whoever may read policies cannot write. `up` on a new cluster creates one
    /// token, `admin`. Each command writes that Secret and the policy's digests, nothing else.
    ///
    ///   deployer token create ci         # prints the token once
    ///   deployer token list
    ///   deployer token revoke ci         # 401 for it from then on
    Token {
        #[command(subcommand)]
        command: cmd::token::TokenCommand,
    },
    /// Set the number of peers: the StatefulSet and the per-pod swarm Services together.
    Scale {
        /// New number of peers (1-64).
        replicas: u32,
        #[command(flatten)]
        wait: wait::WaitArgs,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<(), Error> {
    let plan = cli.settings.merged()?.plan()?;
    match cli.command {
        Command::Render { out } => {
            let mut generated = identity::Generated::default();
            generated.ensure(plan.replicas);
            let filters = render::Filters::load(&plan.filters_dir)?;
            let objects =
                render::render(&render::Input { plan: &plan, generated: &generated, filters: &filters, announce: Default::default() })?;
            match out {
                Some(dir) => {
                    let paths = render::write_dir(&objects, &dir)?;
                    eprintln!("wrote {} objects to {}", paths.len(), dir.display());
                }
                None => print!("{}", render::to_yaml(&objects)),
            }
            Ok(())
        }
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Local(format!("cannot start the async runtime: {e}")))?;
            rt.block_on(async move {
                let mut cl = k8s::Cluster::connect(&cli.target).await?;
                match command {
                    Command::Render { .. } => unreachable!(),
                    Command::Up { bundle, skip_crds, wait } => cmd::up::up(&mut cl, plan, bundle.as_deref(), skip_crds, &wait).await,
                    Command::Status { output } => status::status(&cl, plan, output).await,
                    Command::Down { purge, yes_delete_namespace, wait } => {
                        cmd::down::down(&cl, plan, purge, yes_delete_namespace, &wait).await
                    }
                    Command::Scale { replicas, wait } => cmd::scale::scale(&cl, plan, replicas, &wait).await,
                    Command::BenchApply => cmd::up::bench_apply(&cl, plan).await,
                    Command::Token { command } => cmd::token::token(&cl, plan, command).await,
                }
            })
        }
    }
}
