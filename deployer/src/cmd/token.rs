//! `token create|list|revoke`: the API tokens for writes through the edge. The tokens live
//! in the Secret `<NAME>-api-tokens`; the router's policy holds only their SHA-256
//! (`render::with_token_digests`). Each command applies the Secret and the policy through
//! the one apply path, the policy as the deployer last applied it with only the digests
//! changed (`apply::as_applied`), so nothing else in the cluster is written.

use super::state;
use super::status::Output;
use crate::config::{check_router, Plan};
use crate::errors::Error;
use crate::identity::{self, Generated};
use crate::k8s::apply::{apply_all, as_applied};
use crate::k8s::Cluster;
use crate::render::{self, render, Filters, Input};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a new bearer token NAME and allow it: prints the token once, on stdout.
    ///
    /// The token is stored in the Secret <NAME>-api-tokens of the deployer's namespace; the
    /// router's policy gets only its SHA-256. Use it as `Authorization: Bearer <token>`
    /// (Kubo's CLI: `ipfs --api /dns/HOST/tcp/443/https --api-auth bearer:<token> add FILE`).
    /// Writes the Secret and the policy, nothing else.
    Create {
        /// A name to know it by (lowercase letters, digits, '-'), e.g. `ci` or `alice-laptop`.
        // Its own id: `name` is the deployment's (--name), which the flattened settings read.
        #[arg(id = "token_name", value_name = "NAME")]
        token: String,
    },
    /// The tokens by name, and whether the running policy accepts each (never the tokens).
    List {
        /// `text` for people, `json` for scripts.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
    },
    /// Refuse token NAME from now on and delete it: the policy first, then the Secret.
    ///
    /// Envoy reloads the filter's configuration within seconds of the policy's change;
    /// requests with the token are then answered 401.
    Revoke {
        /// The token's name (`deployer token list`).
        #[arg(id = "token_name", value_name = "NAME")]
        token: String,
    },
}

pub async fn token(cl: &Cluster, plan: Plan, command: TokenCommand) -> Result<(), Error> {
    match command {
        TokenCommand::Create { token } => create(cl, &plan, &token).await,
        TokenCommand::List { output } => list(cl, &plan, output).await,
        TokenCommand::Revoke { token } => revoke(cl, &plan, &token).await,
    }
}

/// How to read a token back from the Secret (for people with the rights to).
pub fn read_command(plan: &Plan, name: &str) -> String {
    format!(
        "kubectl -n {} get secret {} -o jsonpath='{{.data.{name}}}' | base64 -d",
        plan.namespace,
        state::api_tokens_secret(plan)
    )
}

async fn create(cl: &Cluster, plan: &Plan, name: &str) -> Result<(), Error> {
    identity::check_token_name(name).map_err(Error::Usage)?;
    let policy = running_policy(cl, plan).await?;
    let mut tokens = state::api_tokens(cl, plan).await?.unwrap_or_default();
    if tokens.contains_key(name) {
        return Err(Error::Usage(format!(
            "a token named {name:?} exists: `deployer token revoke {name}` first, or pick another name"
        )));
    }
    let token = identity::new_api_token();
    tokens.insert(name.to_string(), token.clone());
    // Stored before it is allowed: a token the policy accepts is never lost.
    apply_secret(cl, plan, &tokens).await?;
    apply_policy(cl, policy, &tokens, &[]).await?;
    println!("{token}");
    eprintln!(
        "created token {name:?}: the policy holds its SHA-256, the token is above (shown once; read it again with `{}`)",
        read_command(plan, name)
    );
    Ok(())
}

async fn revoke(cl: &Cluster, plan: &Plan, name: &str) -> Result<(), Error> {
    let policy = running_policy(cl, plan).await?;
    let mut tokens = state::api_tokens(cl, plan).await?.unwrap_or_default();
    let Some(token) = tokens.remove(name) else {
        let known: Vec<&str> = tokens.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "no token named {name:?} (tokens: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    };
    // Refused first, deleted then: an interrupted revoke leaves a token nobody can use.
    apply_policy(cl, policy, &tokens, &[&token]).await?;
    apply_secret(cl, plan, &tokens).await?;
    eprintln!("revoked token {name:?}: the policy no longer accepts it and the Secret no longer holds it");
    Ok(())
}

#[derive(serde::Serialize)]
struct Listed {
    name: String,
    /// Whether the running policy holds its digest.
    accepted: bool,
}

async fn list(cl: &Cluster, plan: &Plan, output: Output) -> Result<(), Error> {
    let policy = running_policy(cl, plan).await?;
    let cfg = render::router_config(&policy).unwrap_or_default();
    let entries: Vec<String> = cfg["credentials"]["bearer_tokens"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let tokens = state::api_tokens(cl, plan).await?.unwrap_or_default();
    let listed: Vec<Listed> = tokens
        .iter()
        .map(|(name, t)| Listed { name: name.clone(), accepted: entries.contains(&edge_logic::router::bearer_digest(t)) })
        .collect();
    let others = entries.len().saturating_sub(listed.iter().filter(|l| l.accepted).count());
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"secret": state::api_tokens_secret(plan), "tokens": listed, "other_bearer_entries": others})
        ),
        Output::Text => {
            println!("{:<24} ACCEPTED", "NAME");
            for l in &listed {
                println!("{:<24} {}", l.name, if l.accepted { "yes" } else { "no (run `deployer up`)" });
            }
            if listed.is_empty() {
                eprintln!("no tokens: `deployer token create NAME` makes one");
            }
            if others > 0 {
                eprintln!("the router's configuration also accepts {others} bearer token entries of its own (from --router-config)");
            }
        }
    }
    Ok(())
}

/// The applied policy that carries the router's configuration, or what to run first.
async fn running_policy(cl: &Cluster, plan: &Plan) -> Result<Value, Error> {
    let live = state::router_policy(cl, plan).await?;
    let live = live.ok_or_else(|| {
        let (gvk, name) = state::router_policy_ref(plan);
        Error::Usage(format!(
            "no {}/{name} in namespace {}: the router is not attached yet; run `deployer up` first",
            gvk.2, plan.namespace
        ))
    })?;
    if render::router_config(&live).is_none() && live["spec"].is_object() {
        // The object exists but holds no router entry: not one the deployer made.
        return Err(Error::Usage(format!("{} holds no router configuration; run `deployer up`", crate::k8s::display(&live))));
    }
    Ok(live)
}

/// The tokens Secret, rendered from its template (base/secrets.yaml) and applied.
async fn apply_secret(cl: &Cluster, plan: &Plan, tokens: &BTreeMap<String, String>) -> Result<(), Error> {
    let generated = Generated { api_tokens: Some(tokens.clone()), ..Default::default() };
    let objects = render(&Input { plan, generated: &generated, filters: &Filters::placeholder(), announce: BTreeMap::new() })?;
    let secret = state::api_tokens_secret(plan);
    let objs: Vec<&Value> = objects.iter().filter(|o| o.kind() == "Secret" && o.name() == secret).map(|o| &o.value).collect();
    apply_all(cl, &objs).await?;
    Ok(())
}

/// The policy as the deployer applied it, with the digests of `tokens` in and those of
/// `revoked` out, applied.
async fn apply_policy(cl: &Cluster, live: Value, tokens: &BTreeMap<String, String>, revoked: &[&str]) -> Result<(), Error> {
    let what = crate::k8s::display(&live);
    let mut mine = as_applied(&live).ok_or_else(|| {
        Error::Usage(format!("{what} was not applied by the deployer (no managed fields of its own); run `deployer up`"))
    })?;
    let slot = render::router_config_mut(&mut mine)
        .ok_or_else(|| Error::Usage(format!("{what}: the deployer does not set the router's configuration there; run `deployer up`")))?;
    let next = render::with_token_digests(slot, tokens, revoked);
    check_router(&next).map_err(|e| Error::Usage(format!("{what}: {e}")))?;
    *slot = next;
    apply_all(cl, &[&mine]).await?;
    Ok(())
}
