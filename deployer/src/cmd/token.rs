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
    let policies = running_policies(cl, plan).await?;
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
    apply_policies(cl, &policies, &tokens, &[]).await?;
    println!("{token}");
    eprintln!(
        "created token {name:?}: the policy holds its SHA-256, the token is above (shown once; read it again with `{}`)",
        read_command(plan, name)
    );
    Ok(())
}

async fn revoke(cl: &Cluster, plan: &Plan, name: &str) -> Result<(), Error> {
    let policies = running_policies(cl, plan).await?;
    let mut tokens = state::api_tokens(cl, plan).await?.unwrap_or_default();
    let Some(token) = tokens.remove(name) else {
        let known: Vec<&str> = tokens.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "no token named {name:?} (tokens: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    };
    // Refused first, deleted then: an interrupted revoke leaves a token nobody can use.
    apply_policies(cl, &policies, &tokens, &[&token]).await?;
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
    let policies = running_policies(cl, plan).await?;
    // A token counts as accepted when every carrier of the router's configuration holds
    // its digest (one that missed a write would refuse it on some routes).
    let held = |digest: &String| {
        policies.iter().all(|p| {
            render::router_config(p).is_some_and(|c| {
                c["credentials"]["bearer_tokens"].as_array().is_some_and(|a| a.iter().any(|e| e.as_str() == Some(digest.as_str())))
            })
        })
    };
    let cfg = render::router_config(&policies[0]).unwrap_or_default();
    let entries: Vec<String> = cfg["credentials"]["bearer_tokens"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let tokens = state::api_tokens(cl, plan).await?.unwrap_or_default();
    let listed: Vec<Listed> = tokens
        .iter()
        .map(|(name, t)| Listed { name: name.clone(), accepted: held(&edge_logic::router::bearer_digest(t)) })
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

/// The applied policies that carry the router's configuration (every one of
/// `render::router_policy_refs`), or what to run first.
async fn running_policies(cl: &Cluster, plan: &Plan) -> Result<Vec<Value>, Error> {
    let live = state::router_policies(cl, plan).await?;
    let (gvk, names) = render::router_policy_refs(plan);
    if live.len() < names.len() {
        let present: Vec<&str> = live.iter().filter_map(|o| o["metadata"]["name"].as_str()).collect();
        let missing: Vec<&String> = names.iter().filter(|n| !present.contains(&n.as_str())).collect();
        return Err(Error::Usage(format!(
            "no {} {} in namespace {}: the router is not attached yet; run `deployer up` first",
            gvk.2,
            missing.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
            plan.namespace
        )));
    }
    for o in &live {
        if render::router_config(o).is_none() && o["spec"].is_object() {
            // The object exists but holds no router entry: not one the deployer made.
            return Err(Error::Usage(format!("{} holds no router configuration; run `deployer up`", crate::k8s::display(o))));
        }
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

/// Each policy as the deployer applied it, with the digests of `tokens` in and those of
/// `revoked` out, applied together.
async fn apply_policies(cl: &Cluster, live: &[Value], tokens: &BTreeMap<String, String>, revoked: &[&str]) -> Result<(), Error> {
    let mut mine = Vec::new();
    for l in live {
        let what = crate::k8s::display(l);
        let mut m = as_applied(l).ok_or_else(|| {
            Error::Usage(format!("{what} was not applied by the deployer (no managed fields of its own); run `deployer up`"))
        })?;
        let slot = render::router_config_mut(&mut m)
            .ok_or_else(|| Error::Usage(format!("{what}: the deployer does not set the router's configuration there; run `deployer up`")))?;
        let next = render::with_token_digests(slot, tokens, revoked);
        check_router(&next).map_err(|e| Error::Usage(format!("{what}: {e}")))?;
        *slot = next;
        mine.push(m);
    }
    apply_all(cl, &mine.iter().collect::<Vec<_>>()).await?;
    Ok(())
}
