//! `/api/v0/add` through the ipfs-cluster proxy, answered as Kubo answers.
//!
//! The request side (`query`, `multipart`) decides where the request goes
//! and learns what the response rewrite needs; the response side (`lines`,
//! `response`) turns the cluster's NDJSON into Kubo's, line by line; `flow`
//! is the per-request state machine the filter runs them in.

pub mod checks;
pub mod cidbase;
pub mod config;
pub mod event;
pub mod flow;
pub mod lines;
pub mod multipart;
pub mod query;
pub mod reply;
pub mod response;
