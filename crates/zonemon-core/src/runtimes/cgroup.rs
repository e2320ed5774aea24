//! Reading runtime ids out of cgroup paths.
//!
//! Only the last component of a path (the init's own cgroup) is trusted to
//! name the zone: a zone nested inside a container shares or extends its
//! container's cgroup, and must not be named after it.

/// The last component of a cgroup path (`/docker/abc` → `abc`), if any.
pub fn last(path: &str) -> Option<&str> {
    path.rsplit('/').find(|c| !c.is_empty())
}

/// The component before the last one (`/docker/abc` → `docker`), if any.
pub fn parent(path: &str) -> Option<&str> {
    let mut it = path.rsplit('/').filter(|c| !c.is_empty());
    it.next()?;
    it.next()
}

/// The id in the last component of `path` when it is `<prefix><id>` or
/// `<prefix><id>.scope` (`docker-abc.scope`, `libpod-abc`, `crio-abc`).
pub fn prefixed_id<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let id = last(path)?.strip_prefix(prefix)?;
    let id = id.strip_suffix(".scope").unwrap_or(id);
    (!id.is_empty()).then_some(id)
}

/// Decodes systemd's unit-name escaping (`\x2d` → `-`); `None` if an escape is malformed.
pub fn unescape_unit(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) != Some(&b'x') {
                return None;
            }
            let hex = s.get(i + 2..i + 4)?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::{mutated, CASES};
    use proptest::prelude::*;

    #[test]
    fn components() {
        assert_eq!(last("/docker/abc"), Some("abc"));
        assert_eq!(last("/docker/abc/"), Some("abc"));
        assert_eq!(last("/"), None);
        assert_eq!(parent("/docker/abc"), Some("docker"));
        assert_eq!(parent("/abc"), None);
    }

    #[test]
    fn prefixed_ids() {
        assert_eq!(
            prefixed_id("/system.slice/docker-abc.scope", "docker-"),
            Some("abc")
        );
        assert_eq!(
            prefixed_id("/libpod_parent/libpod-abc", "libpod-"),
            Some("abc")
        );
        assert_eq!(prefixed_id("/docker-abc.scope/inner", "docker-"), None);
        assert_eq!(prefixed_id("/docker-.scope", "docker-"), None);
    }

    #[test]
    fn unit_unescaping() {
        assert_eq!(unescape_unit("my\\x2dbox").as_deref(), Some("my-box"));
        assert_eq!(unescape_unit("plain").as_deref(), Some("plain"));
        assert_eq!(unescape_unit("bad\\x2"), None);
        assert_eq!(unescape_unit("bad\\y20"), None);
        assert_eq!(unescape_unit("bad\\xzz"), None);
        assert_eq!(unescape_unit("bad\\x+f"), None);
        assert_eq!(unescape_unit("\\xff"), None, "not UTF-8");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn survives_random_paths(
            b in mutated(b"/machine.slice/machine-a\\x2db.scope/docker-abc.scope")
        ) {
            let s = String::from_utf8_lossy(&b);
            let _ = last(&s);
            let _ = parent(&s);
            let _ = prefixed_id(&s, "docker-");
            if let Some(u) = unescape_unit(&s) {
                prop_assert!(u.len() <= s.len());
            }
        }
    }
}
