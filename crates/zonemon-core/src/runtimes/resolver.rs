//! The runtime resolver contract: the trait each runtime module implements,
//! and the helpers that build its answers from raw runtime values.

use crate::escape::{bound, MAX_NAME_LEN};
use crate::naming::{K8sNames, Lookup, NameSource, ResolvedName};

use super::probe::Probe;

/// A runtime resolver that works from a shared [`Probe`] of the zone.
///
/// A runtime module implements the two questions; callers ask the one,
/// [`RuntimeResolver::lookup_probe`], and get a three-way answer.
pub trait RuntimeResolver: Send {
    /// Names the zone `probe` describes, or `None` to let the next runtime try.
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName>;

    /// After [`RuntimeResolver::resolve_probe`] found nothing: whether the
    /// zone shows any sign of this runtime (its processes above the init,
    /// its cgroup naming scheme, a container it is creating), so that a later
    /// look, once its state is written, might name it. `true` when unsure.
    fn could_claim_later(&self, _probe: &Probe<'_>) -> bool {
        true
    }

    /// The command names (`task->comm`: exact, or a prefix ending in `*`;
    /// see [`super::comms::comm_matches`]) of the processes above a zone
    /// whose command lines this resolver looks at, in
    /// [`RuntimeResolver::resolve_probe`] and
    /// [`RuntimeResolver::could_claim_later`] alike. When the kernel says
    /// who was above the init ([`crate::lineage::Lineage`]), a process whose
    /// command name matches no resolver's is not read. `None` (the default):
    /// every process's command line.
    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Named, not yet (signs of this runtime, no state written yet), or never.
    fn lookup_probe(&mut self, probe: &Probe<'_>) -> Lookup {
        match self.resolve_probe(probe) {
            Some(name) => Lookup::Named(name),
            None if self.could_claim_later(probe) => Lookup::NotYet,
            None => Lookup::Never,
        }
    }
}

/// Implements [`NameResolver`] for a runtime resolver with a `root: Arc<Path>` field.
macro_rules! standalone_resolver {
    ($t:ty) => {
        impl $crate::naming::NameResolver for $t {
            fn lookup(&mut self, facts: &$crate::naming::ZoneFacts<'_>) -> $crate::naming::Lookup {
                let root = std::sync::Arc::clone(&self.root);
                let probe = $crate::runtimes::probe::Probe::new(&root, *facts);
                if probe.nested() {
                    return $crate::naming::Lookup::Never;
                }
                $crate::runtimes::resolver::RuntimeResolver::lookup_probe(self, &probe)
            }
        }
    };
}
pub(crate) use standalone_resolver;

/// Whether `s` can be a container id and a path component: 1 to 255
/// bytes of `[A-Za-z0-9_.+-]`, not starting with `.` (so never `.` or `..`).
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
}

/// Whether `s` is 64 lowercase hex digits (Docker, Podman and CRI-O ids).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A [`ResolvedName`] from raw runtime values: `None` when the name is
/// empty or blank; name, id and Kubernetes names are bounded to
/// [`MAX_NAME_LEN`].
pub fn resolved(
    name: &str,
    label: &'static str,
    runtime: &'static str,
    container_id: Option<&str>,
) -> Option<ResolvedName> {
    if name.trim().is_empty() {
        return None;
    }
    Some(ResolvedName {
        name: bound(name, MAX_NAME_LEN),
        source: NameSource::Runtime(label),
        runtime: Some(runtime.to_string()),
        container_id: container_id
            .filter(|c| !c.is_empty())
            .map(|c| bound(c, MAX_NAME_LEN)),
        k8s: None,
        meta: None,
    })
}

/// A [`ResolvedName`] for a Kubernetes container: named `namespace/pod/container`.
/// `None` when any of the three is blank.
pub fn resolved_k8s(
    namespace: &str,
    pod: &str,
    container: &str,
    label: &'static str,
    runtime: &'static str,
    container_id: Option<&str>,
) -> Option<ResolvedName> {
    if [namespace, pod, container]
        .iter()
        .any(|s| s.trim().is_empty())
    {
        return None;
    }
    let k8s = K8sNames {
        namespace: bound(namespace, MAX_NAME_LEN),
        pod: bound(pod, MAX_NAME_LEN),
        container: bound(container, MAX_NAME_LEN),
    };
    let mut r = resolved(&k8s.zone_name(), label, runtime, container_id)?;
    r.k8s = Some(k8s);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("zmrt-runc1"));
        assert!(valid_id("a.b_c+d"));
        assert!(!valid_id(""));
        assert!(!valid_id("."));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"a".repeat(256)));
        assert!(is_hex64(&"ab12".repeat(16)));
        assert!(!is_hex64(&"AB12".repeat(16)));
        assert!(!is_hex64("abc"));
    }

    #[test]
    fn resolved_names_are_bounded() {
        let r = resolved(&"x".repeat(10_000), "l", "runc", Some(&"i".repeat(9_999))).unwrap();
        assert!(r.name.len() <= MAX_NAME_LEN + 3);
        assert!(r.container_id.unwrap().len() <= MAX_NAME_LEN + 3);
        assert!(resolved("  ", "l", "runc", None).is_none());
        let k = resolved_k8s("ns", "pod", "c", "l", "kubernetes", Some("id")).unwrap();
        assert_eq!(k.name, "ns/pod/c");
        assert_eq!(k.k8s.unwrap().pod, "pod");
        assert!(resolved_k8s("ns", "", "c", "l", "kubernetes", None).is_none());
    }
}
