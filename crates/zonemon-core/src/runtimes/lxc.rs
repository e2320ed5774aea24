//! LXC: `lxc-start -n aap` → `aap`.
//!
//! The container's init is the child of LXC's monitor, whose title is
//! `[lxc monitor] <lxcpath> <name>`; the container must exist there
//! (`<lxcpath>/<name>/config`, below the root). Without the monitor (it
//! may be gone by the time of the event) the init's cgroup names it:
//! `…/lxc.payload.<name>` (LXC 4 and later), `/lxc/<name>` (older).
//! LXC has no id besides the name: `container_id` is the name too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::probe::Probe;
use super::resolver::{resolved, RuntimeResolver};
use super::{cgroup, fsread};
use crate::naming::ResolvedName;

/// The title prefix of LXC's monitor process.
const MONITOR: &str = "[lxc monitor] ";

/// Splits a monitor title into (lxcpath, name); `None` if it is not one.
///
/// The name is the last space-separated word (LXC names never hold a `/`;
/// a path may hold spaces).
pub fn parse_monitor_title(title: &str) -> Option<(&str, &str)> {
    let rest = title.strip_prefix(MONITOR)?.trim_end_matches('\0');
    let (path, name) = rest.rsplit_once(' ')?;
    (path.starts_with('/')
        && !name.is_empty()
        && !name.contains('/')
        && name != "."
        && name != "..")
        .then_some((path, name))
}

/// The container name in an LXC cgroup path: the last component's
/// `lxc.payload.<name>`, or `/lxc/<name>`.
pub fn cgroup_name(path: &str) -> Option<&str> {
    let last = cgroup::last(path)?;
    let name = match last.strip_prefix("lxc.payload.") {
        Some(n) => n,
        None if cgroup::parent(path) == Some("lxc") && last != "lxc.pivot" => last,
        None => return None,
    };
    (!name.is_empty()).then_some(name)
}

/// Names LXC containers from their monitor or cgroup.
pub struct Lxc {
    root: Arc<Path>,
}

impl Lxc {
    /// An LXC resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        Lxc {
            root: Arc::from(root),
        }
    }
}

/// The command names of LXC's processes that may be above its containers'
/// inits (`lxc-start`, and its monitor, whose title is rewritten but whose
/// command name stays).
const PROCESSES: &[&str] = &["lxc*"];

impl RuntimeResolver for Lxc {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        let monitor = probe.ancestors_like(PROCESSES).find_map(|a| {
            // The title is one argument, or split by NULs after a rewrite: join what is there.
            let title = a.args.join(" ");
            let (path, name) = parse_monitor_title(title.trim_end())?;
            let config = PathBuf::from(path.trim_start_matches('/'))
                .join(name)
                .join("config");
            fsread::open_beneath(probe.root(), &config)?;
            Some(name.to_string())
        });
        if let Some(name) = monitor {
            return resolved(&name, "lxc-monitor", "lxc", Some(&name));
        }
        let name = probe.cgroups().iter().find_map(|p| cgroup_name(p))?;
        resolved(name, "lxc-cgroup", "lxc", Some(name))
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(PROCESSES)
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        // The monitor's title (`[lxc monitor] PATH NAME`) is no program name: look at every argument.
        probe
            .ancestors_like(PROCESSES)
            .any(|a| a.args.iter().any(|x| x.contains("lxc")))
            || probe.shows_signs_of(&[], &["lxc"])
    }
}

super::resolver::standalone_resolver!(Lxc);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameResolver, NameSource};
    use crate::runtimes::testutil::{facts, mutated, TempTree, CASES};
    use proptest::prelude::*;

    fn host(t: &TempTree, title: &str) {
        t.proc(
            300,
            200,
            5000,
            &[300, 1],
            &["/sbin/init"],
            "0::/lxc.payload.aap\n4:memory:/lxc.payload.aap\n",
        );
        t.proc(200, 1, 4990, &[200], &[title], "0::/lxc.monitor.aap\n");
        t.write(
            "var/lib/lxc/aap/config",
            "lxc.uts.name = aap\nlxc.net.0.type = empty\n",
        );
    }

    #[test]
    fn names_from_the_monitor() {
        let t = TempTree::new("lxc");
        host(&t, "[lxc monitor] /var/lib/lxc aap");
        let r = Lxc::new(t.root())
            .lookup(&facts(300, 200, None))
            .named()
            .expect("named");
        assert_eq!(r.name, "aap");
        assert_eq!(r.source, NameSource::Runtime("lxc-monitor"));
        assert_eq!(r.runtime.as_deref(), Some("lxc"));
        assert_eq!(r.container_id.as_deref(), Some("aap"));
    }

    #[test]
    fn a_fake_monitor_needs_a_real_container() {
        let t = TempTree::new("lxc-fake");
        host(&t, "[lxc monitor] /var/lib/lxc noot");
        // No /var/lib/lxc/noot/config: the title is not believed; the cgroup is.
        let r = Lxc::new(t.root())
            .lookup(&facts(300, 200, None))
            .named()
            .unwrap();
        assert_eq!(r.name, "aap");
        assert_eq!(r.source, NameSource::Runtime("lxc-cgroup"));
    }

    #[test]
    fn names_from_the_cgroup_alone() {
        let t = TempTree::new("lxc-cgroup");
        let mut l = Lxc::new(t.root());
        assert_eq!(
            l.lookup(&facts(1, 0, Some("/lxc.payload.mies")))
                .named()
                .unwrap()
                .name,
            "mies"
        );
        assert_eq!(
            l.lookup(&facts(1, 0, Some("/lxc/old")))
                .named()
                .unwrap()
                .name,
            "old"
        );
        assert!(l
            .lookup(&facts(1, 0, Some("/lxc.payload.mies/inner")))
            .named()
            .is_none());
        assert!(l
            .lookup(&facts(1, 0, Some("/lxc.monitor.mies")))
            .named()
            .is_none());
        assert!(l
            .lookup(&facts(1, 0, Some("/lxc.payload.")))
            .named()
            .is_none());
    }

    #[test]
    fn monitor_titles() {
        assert_eq!(
            parse_monitor_title("[lxc monitor] /tmp/my lxc aap"),
            Some(("/tmp/my lxc", "aap"))
        );
        assert_eq!(parse_monitor_title("[lxc monitor] /var/lib/lxc"), None);
        assert_eq!(parse_monitor_title("[lxc monitor] rel aap"), None);
        assert_eq!(parse_monitor_title("[lxc monitor] /p .."), None);
        assert_eq!(parse_monitor_title("lxc-start -n aap"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parsers_survive_mutations(
            t in mutated(b"[lxc monitor] /var/lib/lxc aap"),
            c in mutated(b"/lxc.payload.aap"),
        ) {
            let t = String::from_utf8_lossy(&t);
            if let Some((p, n)) = parse_monitor_title(&t) {
                prop_assert!(p.len() + n.len() < t.len());
            }
            let _ = cgroup_name(&String::from_utf8_lossy(&c));
        }
    }
}
