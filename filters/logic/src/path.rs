//! The one rule for a path written in a filter's configuration (health's
//! `paths`, the router's `health_paths` and `platform_paths`).

/// Whether `p` is a plain absolute path: `/`, or segments of printable ASCII
/// with no empty or dot segment and no `?`, `#`, `%` or `\`. Such a path is
/// the same before and after the router decodes a request's path, so a
/// client reaches it however it encodes it, and health and the router agree
/// on it (a control character, for one, is refused by the router's decoder).
pub fn is_plain(p: &str) -> bool {
    p == "/" || p.strip_prefix('/').is_some_and(|body| body.split('/').all(is_plain_segment))
}

/// One segment of a plain path.
pub fn is_plain_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| (0x21..0x7f).contains(&b) && !b"?#%\\".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_the_ones_every_decoder_reads_alike() {
        for p in ["/", "/healthz", "/a/b-c_d.e~f", "/ready!"] {
            assert!(is_plain(p), "{p:?}");
        }
        for p in ["", "healthz", "//", "/a/", "/a//b", "/./a", "/a/..", "/a?b", "/a#b", "/a%20", "/a\\b", "/a b", "/he\u{7f}", "/\t", "/é"] {
            assert!(!is_plain(p), "{p:?}");
        }
    }
}
