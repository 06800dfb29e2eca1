//! The placeholder values: defaults from `manifests/kubernetes/values.env` (the one place for
//! names, versions, ports and sizes), overridden by the deployer's configuration.

use std::collections::BTreeMap;

/// The defaults file, embedded so the binary works from anywhere.
pub const DEFAULTS: &str = include_str!("../../manifests/kubernetes/values.env");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values(BTreeMap<String, String>);

impl Values {
    /// Parses `KEY=VALUE` lines; `#` starts a comment line; the value is literal to the end.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("values line {}: expected KEY=VALUE", n + 1))?;
            if !is_key(key) {
                return Err(format!("values line {}: `{key}` is not an UPPER_SNAKE key", n + 1));
            }
            map.insert(key.to_string(), value.trim_end().to_string());
        }
        Ok(Values(map))
    }

    pub fn defaults() -> Self {
        Self::parse(DEFAULTS).expect("values.env is checked by a unit test")
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A value that must be there; a missing one is an error naming the key (values.env is
    /// embedded, so the unit tests catch it before a user could).
    pub fn need(&self, key: &str) -> Result<&str, crate::errors::Error> {
        self.get(key).ok_or_else(|| crate::errors::Error::Usage(format!("values.env has no {key}")))
    }

    /// `need` for tests.
    #[cfg(test)]
    pub fn req(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("values.env has no {key}"))
    }

    /// A port from values.env, for tests.
    #[cfg(test)]
    pub fn port(&self, key: &str) -> u16 {
        self.req(key).parse().unwrap_or_else(|_| panic!("{key} is not a port"))
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_string(), value.into());
    }
}

pub fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_pin_versions() {
        let v = Values::defaults();
        assert_eq!(v.req("CLUSTER_IMAGE"), "docker.io/ipfs/ipfs-cluster:v1.1.6");
        assert_eq!(v.req("ENVOY_GATEWAY_VERSION"), "v1.9.0");
        assert_eq!(v.req("CERT_MANAGER_VERSION"), "v1.21.1");
        assert_eq!(v.req("KUBERNETES_SCHEMA_VERSION"), "1.33.0");
        assert_eq!(v.req("PORT_SWARM"), "4001");
        assert_eq!(v.req("STORAGE_CLASS"), "");
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(Values::parse("nope").is_err());
        assert!(Values::parse("lower=1").is_err());
        assert_eq!(Values::parse("A=b=c # not a comment").unwrap().req("A"), "b=c # not a comment");
    }
}
