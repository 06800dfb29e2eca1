//! The one mapping of `kube::Error` to the deployer's errors and exit codes
//! (deployer/README.md, "Exit codes"), and which failures are worth retrying.

use crate::errors::Error;
use kube::discovery::ApiResource;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a failed call was doing: named in the message.
#[derive(Debug, Clone)]
pub struct Call {
    /// The API verb (`get`, `list`, `patch`, `delete`), as RBAC names it.
    pub verb: &'static str,
    /// `plural.group` (`statefulsets.apps`), as RBAC names it.
    pub resource: String,
    pub namespace: Option<String>,
    /// For refusals: what was sent (`applying Service/x`).
    pub what: String,
}

impl Call {
    pub fn new(verb: &'static str, ar: &ApiResource, namespace: Option<&str>, what: impl Into<String>) -> Self {
        let resource = if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) };
        Call { verb, resource, namespace: namespace.map(str::to_string), what: what.into() }
    }

    pub fn discovery() -> Self {
        Call { verb: "list", resource: "API groups (discovery)".into(), namespace: None, what: "discovery".into() }
    }
}

/// The HTTP status code and message of an API error, if it is one.
pub fn api_status(e: &kube::Error) -> Option<(u16, &str)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.message.as_str())),
        _ => None,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    api_status(e).is_some_and(|(c, _)| c == 404)
}

/// Maps a failed call to an actionable error:
/// 401 and client-side credential errors: kubeconfig (4); no answer, overload (429, 503,
/// 504) or an answer that is not the API's: unreachable (5); 403: forbidden (6), naming the
/// verb and resource; 404 of a kind: not served (7); any other answer of the API server
/// (400, 409, 422, 500...): refused (9), with the server's message.
pub fn map(server: &str, context: &str, e: kube::Error, call: &Call) -> Error {
    let unreachable = |reason: String| Error::Unreachable { server: server.into(), context: context.into(), reason };
    match e {
        kube::Error::Api(s) => match s.code {
            401 => Error::Kubeconfig(format!("the server rejected the credentials: {}", s.message)),
            403 => Error::Forbidden {
                verb: call.verb.into(),
                resource: call.resource.clone(),
                ns: call.namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_else(|| {
                    if call.verb == "list" && call.resource != "API groups (discovery)" { " (all namespaces)".into() } else { String::new() }
                }),
                message: s.message,
            },
            // A 404 on a collection: the kind went away (a CRD deleted since discovery).
            404 if s.details.as_ref().is_none_or(|d| d.name.is_empty()) => Error::CrdMissing {
                kind: call.resource.clone(),
                api_version: String::new(),
                hint: format!("the API server no longer serves it ({})", s.message),
            },
            429 | 503 | 504 => unreachable(format!("the API server is overloaded or unavailable (HTTP {}): {}", s.code, s.message)),
            _ => Error::Rejected { what: call.what.clone(), message: s.message },
        },
        kube::Error::Auth(e) => Error::Kubeconfig(format!("cannot authenticate: {e}")),
        kube::Error::InferConfig(e) => Error::Kubeconfig(e.to_string()),
        kube::Error::InferKubeconfig(e) => Error::Kubeconfig(e.to_string()),
        other => unreachable(other.to_string()),
    }
}

/// Set once any request of this process has had an answer: from then on a dropped
/// connection is a server restarting (a control-plane upgrade, a crashed API server coming
/// back), worth waiting out; before it, an address nobody listens on, which should fail fast.
static ANSWERED: AtomicBool = AtomicBool::new(false);

/// How long a connection failure is retried once the server has answered: an API server
/// restart (stop, start, etcd reconnect, readiness) takes seconds to tens of seconds on a
/// busy machine.
const RESTART_WINDOW: Duration = Duration::from_secs(90);

/// How long a failure is worth retrying (none: fail now).
pub fn retry_for(e: &kube::Error) -> Option<Duration> {
    match e {
        // cert-manager's webhook answers only once its CA is injected, a little after its
        // Deployment is available: a fresh install retries rather than fails.
        kube::Error::Api(s) if s.code >= 500 && s.message.contains("failed calling webhook") => Some(Duration::from_secs(120)),
        // Overload, or an API server that is starting (its etcd or informers not ready yet).
        kube::Error::Api(s) if matches!(s.code, 429 | 503 | 504) => Some(Duration::from_secs(30)),
        // A refused or dropped connection: a few seconds if the server never answered, so an
        // unreachable server still fails fast; a restart's length if it did.
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            Some(if ANSWERED.load(Ordering::Relaxed) { RESTART_WINDOW } else { Duration::from_secs(6) })
        }
        _ => None,
    }
}

/// Runs `f` again, with exponential backoff, while it fails with an error worth retrying
/// (`retry_for`, or `also`) and that error's retry time since the first attempt is not
/// over. Only for requests that are safe to repeat: reads, deletes by name and server-side
/// applies (the same apply twice gives the same object).
pub async fn retrying_also<T, F, Fut>(f: F, also: impl Fn(&kube::Error) -> Option<Duration>) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    use backon::{ExponentialBuilder, Retryable};
    let start = Instant::now();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times();
    let out = f
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e| retry_for(e).or_else(|| also(e)).is_some_and(|limit| start.elapsed() < limit))
        .notify(|e, after| {
            if start.elapsed() + after > Duration::from_secs(2) {
                eprintln!("      … retrying in {:.1} s: {e}", after.as_secs_f64());
            }
        })
        .await;
    if out.is_ok() || out.as_ref().is_err_and(|e| matches!(e, kube::Error::Api(_))) {
        ANSWERED.store(true, Ordering::Relaxed);
    }
    out
}

/// [`retrying_also`] with the retryable errors of `retry_for` alone.
pub async fn retrying<T, F, Fut>(f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retrying_also(f, |_| None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str, name: &str) -> kube::Error {
        let mut s = Status::failure(message, "");
        s.code = code;
        if !name.is_empty() {
            s.details = Some(serde_json::from_value(serde_json::json!({"name": name})).unwrap());
        }
        kube::Error::Api(Box::new(s))
    }

    fn call() -> Call {
        let ar = ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&());
        Call::new("list", &ar, Some("ipfs"), "listing swarm Services")
    }

    fn code(e: kube::Error) -> i32 {
        map("https://k", "ctx", e, &call()).exit_code()
    }

    #[test]
    fn each_answer_gets_its_exit_code() {
        assert_eq!(code(api(401, "Unauthorized", "")), 4);
        assert_eq!(code(api(503, "overloaded", "")), 5);
        // A 403 on a read is forbidden, never "unreachable".
        let e = map("https://k", "ctx", api(403, "services is forbidden", ""), &call());
        assert_eq!(e.exit_code(), 6);
        assert!(e.to_string().contains("cannot list services in namespace ipfs"), "{e}");
        assert_eq!(code(api(404, "the server could not find the requested resource", "")), 7);
        assert_eq!(code(api(422, "spec.clusterIP: Invalid value", "x")), 9);
        assert_eq!(code(api(409, "conflict", "x")), 9);
        assert_eq!(code(kube::Error::TlsRequired), 5);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(retry_for(&api(500, "Internal error occurred: failed calling webhook \"webhook.cert-manager.io\"", "")).is_some());
        assert!(retry_for(&api(503, "", "")).is_some());
        for c in [400, 403, 404, 409, 422] {
            assert!(retry_for(&api(c, "", "")).is_none(), "{c}");
        }
    }
}
