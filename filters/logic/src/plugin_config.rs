//! The one way the filters read their JSON plugin configuration (Envoy
//! `configuration`, Envoy Gateway `config`, Istio `pluginConfig`).

use serde::de::DeserializeOwned;

/// Parses `input`; empty (or only whitespace) gives `T::default()`. An
/// unknown key, a wrong type or a bad value is an error whose text names the
/// key, for the log line Envoy shows when it refuses the configuration.
pub fn parse<T: DeserializeOwned + Default>(filter: &str, input: &[u8]) -> Result<T, String> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(input);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        // "." is the root object, "?" a syntax error before any key.
        if matches!(path.as_str(), "." | "?" | "") {
            format!("{filter} configuration: {}", e.inner())
        } else {
            format!("{filter} configuration key `{path}`: {}", e.inner())
        }
    })?;
    // Only whitespace may follow the object: a second object or stray text
    // would otherwise be dropped without a word.
    de.end().map_err(|e| format!("{filter} configuration: {e}"))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct C {
        a: u32,
        inner: Inner,
    }
    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        b: String,
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(parse::<C>("x", b" ").unwrap(), C::default());
        let e = parse::<C>("x", br#"{"inner":{"b":1}}"#).unwrap_err();
        assert!(e.starts_with("x configuration key `inner.b`: invalid type"), "{e}");
        let e = parse::<C>("x", br#"{"zz":1}"#).unwrap_err();
        assert!(e.contains("unknown field `zz`"), "{e}");
        let e = parse::<C>("x", b"{").unwrap_err();
        assert!(e.starts_with("x configuration: "), "{e}");
    }
}
