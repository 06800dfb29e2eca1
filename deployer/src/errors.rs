//! Errors a user can act on, each with its exit code (documented in deployer/README.md).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// Wrong flags, config file or values.
    #[error("{0}")]
    Usage(String),
    /// Local files: filters, output directory, bundle.
    #[error("{0}")]
    Local(String),
    #[error("no usable kubeconfig: {0}\n  hint: set KUBECONFIG or --kubeconfig, or pick a context with --context (see `kubectl config get-contexts`)")]
    Kubeconfig(String),
    #[error("cannot reach the cluster at {server}: {reason}\n  hint: check the network/VPN and that `kubectl --context {context} get ns` works")]
    Unreachable { server: String, context: String, reason: String },
    #[error("forbidden: cannot {verb} {resource}{ns}: {message}\n  hint: the deployer needs rights to {verb} {resource}; ask a cluster admin, or use a context with them")]
    Forbidden { verb: String, resource: String, ns: String, message: String },
    #[error("the cluster does not serve {kind} ({api_version}): {hint}")]
    CrdMissing { kind: String, api_version: String, hint: String },
    /// An installed component lacks what `up` needs; the message holds the fix.
    #[error("{0}")]
    Unsupported(String),
    #[error("timed out after {seconds}s waiting for {what}{last}\n  hint: `deployer status` shows what is pending; rerun `deployer up` to continue, or raise --timeout")]
    Timeout { what: String, seconds: u64, last: String },
    #[error("the API server refused {what}: {message}")]
    Rejected { what: String, message: String },
    #[error("aborted: {0}")]
    Aborted(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Local(_) => 3,
            Error::Kubeconfig(_) => 4,
            Error::Unreachable { .. } => 5,
            Error::Forbidden { .. } => 6,
            Error::CrdMissing { .. } | Error::Unsupported(_) => 7,
            Error::Timeout { .. } => 8,
            Error::Rejected { .. } => 9,
            Error::Aborted(_) => 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_verb_and_resource() {
        let e = Error::Forbidden {
            verb: "patch".into(),
            resource: "statefulsets.apps".into(),
            ns: " in namespace ipfs".into(),
            message: "no".into(),
        };
        let s = e.to_string();
        assert!(s.contains("cannot patch statefulsets.apps in namespace ipfs"), "{s}");
        assert_eq!(e.exit_code(), 6);
    }
}
