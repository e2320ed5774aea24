//! systemd-nspawn: `systemd-nspawn -M aap …` → `aap`.
//!
//! nspawn forks the process that creates the container's init from itself
//! (the creator's command line is nspawn's) and stays its parent: its
//! arguments give the machine name (`-M`/`--machine`, else the last
//! component of `-D`/`--directory`, else the `-i`/`--image` file's name
//! without its extension), exactly as nspawn derives it. With systemd on
//! the host (registered machines), the init's cgroup is
//! `machine.slice/machine-<name>.scope`, the name escaped the way systemd
//! escapes unit names. The machine name is also its id.

use std::path::Path;
use std::sync::Arc;

use super::cgroup;
use super::probe::Probe;
use super::resolver::{resolved, RuntimeResolver};
use crate::naming::ResolvedName;

/// nspawn's short options that take a value.
const SHORT_WITH_VALUE: &str = "DuLMSZipE";

/// nspawn's long options that take a value (given as `--opt value` or `--opt=value`).
const LONG_WITH_VALUE: &[&str] = &[
    "--directory",
    "--template",
    "--image",
    "--oci-bundle",
    "--user",
    "--uuid",
    "--slice",
    "--machine",
    "--hostname",
    "--property",
    "--setenv",
    "--bind",
    "--bind-ro",
    "--tmpfs",
    "--overlay",
    "--overlay-ro",
    "--inaccessible",
    "--network-interface",
    "--network-macvlan",
    "--network-ipvlan",
    "--network-veth-extra",
    "--network-bridge",
    "--network-zone",
    "--network-namespace-path",
    "--port",
    "--selinux-context",
    "--selinux-apparmor-context",
    "--capability",
    "--drop-capability",
    "--ambient-capability",
    "--link-journal",
    "--kill-signal",
    "--personality",
    "--register",
    "--chdir",
    "--pivot-root",
    "--notify-ready",
    "--root-hash",
    "--root-hash-sig",
    "--verity-data",
    "--volatile",
    "--settings",
    "--system-call-filter",
    "--rlimit",
    "--oom-score-adjust",
    "--cpu-affinity",
    "--resolv-conf",
    "--timezone",
    "--console",
    "--load-credential",
    "--set-credential",
    "--bind-user",
    "--private-users-ownership",
    "--image-policy",
    "--suppress-sync",
    "--keep-unit-as",
    "--uid",
    "--background",
];

/// nspawn's options up to its command (nspawn stops at the first
/// non-option, as `getopt` with `+`): (`-M`, `-D`, `-i`), the last of each.
fn nspawn_options(args: &[String]) -> (Option<&str>, Option<&str>, Option<&str>) {
    let (mut machine, mut dir, mut image) = (None, None, None);
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if a == "--" || !a.starts_with('-') || a == "-" {
            break;
        }
        let (key, value): (&str, Option<&str>) = if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((k, v)) => (&a[..k.len() + 2], Some(v)),
                None if LONG_WITH_VALUE.contains(&a) => {
                    i += 1;
                    (a, args.get(i - 1).map(String::as_str))
                }
                None => (a, None),
            }
        } else {
            // Short options, possibly grouped (`-qM aap`, `-Maap`).
            let mut found = (a, None);
            for (pos, c) in a.char_indices().skip(1) {
                if SHORT_WITH_VALUE.contains(c) {
                    let attached = &a[pos + c.len_utf8()..];
                    let v = if attached.is_empty() {
                        i += 1;
                        args.get(i - 1).map(String::as_str)
                    } else {
                        Some(attached)
                    };
                    found = (&a[pos..pos + c.len_utf8()], v);
                    break;
                }
            }
            found
        };
        match (key, value) {
            ("--machine" | "M", Some(v)) => machine = Some(v),
            ("--directory" | "D", Some(v)) => dir = Some(v),
            ("--image" | "i", Some(v)) => image = Some(v),
            _ => {}
        }
    }
    (machine, dir, image)
}

/// The machine name nspawn gives a container started with `args`.
pub fn machine_name(args: &[String]) -> Option<String> {
    let (machine, dir, image) = nspawn_options(args);
    if let Some(m) = machine {
        return (!m.is_empty()).then(|| m.to_string());
    }
    let last = |p: &str| -> Option<String> {
        let base = p.trim_end_matches('/').rsplit('/').next()?;
        (!base.is_empty() && base != "." && base != "..").then(|| base.to_string())
    };
    if let Some(d) = dir {
        return last(d);
    }
    let base = last(image?)?;
    let stem = base
        .strip_suffix(".raw")
        .or_else(|| base.strip_suffix(".img"))
        .unwrap_or(&base);
    (!stem.is_empty()).then(|| stem.to_string())
}

/// The machine name in a `machine-<name>.scope` cgroup under `machine.slice`.
pub fn cgroup_machine(path: &str) -> Option<String> {
    if cgroup::parent(path) != Some("machine.slice") {
        return None;
    }
    let escaped = cgroup::last(path)?
        .strip_prefix("machine-")?
        .strip_suffix(".scope")?;
    let name = cgroup::unescape_unit(escaped)?;
    (!name.is_empty()).then_some(name)
}

/// Names systemd-nspawn containers from nspawn's arguments or the machine scope.
pub struct Nspawn {
    root: Arc<Path>,
}

impl Nspawn {
    /// An nspawn resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        Nspawn {
            root: Arc::from(root),
        }
    }
}

/// systemd-nspawn, the one process of its that may be above its containers' inits.
const PROCESSES: &[&str] = &["systemd-nspawn"];

impl RuntimeResolver for Nspawn {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        if let Some(a) = probe.ancestor_named("systemd-nspawn") {
            if let Some(name) = machine_name(&a.args) {
                return resolved(&name, "nspawn-argv", "nspawn", Some(&name));
            }
        }
        let name = probe.cgroups().iter().find_map(|p| cgroup_machine(p))?;
        resolved(&name, "nspawn-scope", "nspawn", Some(&name))
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        probe.shows_signs_of(PROCESSES, &["machine"])
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(PROCESSES)
    }
}

super::resolver::standalone_resolver!(Nspawn);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameResolver, NameSource};
    use crate::runtimes::testutil::{facts, mutated, TempTree, CASES};
    use proptest::prelude::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn names_from_nspawns_arguments() {
        let t = TempTree::new("nspawn");
        let nspawn = [
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "-q",
            "-M",
            "aap",
            "-D",
            "/srv/rootfs",
            "/bin/sh",
            "-c",
            "sleep 1000",
        ];
        t.proc(
            300,
            200,
            5000,
            &[300, 1],
            &["sh"],
            "0::/machine/aap/payload\n",
        );
        t.proc(250, 200, 4999, &[250], &nspawn, "0::/machine/aap/payload\n");
        t.proc(
            200,
            100,
            4990,
            &[200],
            &nspawn,
            "0::/machine/aap/supervisor\n",
        );
        let r = Nspawn::new(t.root())
            .lookup(&facts(300, 250, None))
            .named()
            .expect("named");
        assert_eq!(r.name, "aap");
        assert_eq!(r.source, NameSource::Runtime("nspawn-argv"));
        assert_eq!(r.runtime.as_deref(), Some("nspawn"));
        assert_eq!(r.container_id.as_deref(), Some("aap"));
    }

    #[test]
    fn machine_names_as_nspawn_derives_them() {
        assert_eq!(
            machine_name(&argv(&["systemd-nspawn", "--machine=noot", "-D", "/x"])).as_deref(),
            Some("noot")
        );
        assert_eq!(
            machine_name(&argv(&["systemd-nspawn", "-D", "/var/lib/machines/mies/"])).as_deref(),
            Some("mies")
        );
        assert_eq!(
            machine_name(&argv(&["systemd-nspawn", "--directory=/srv/wim"])).as_deref(),
            Some("wim")
        );
        assert_eq!(
            machine_name(&argv(&["systemd-nspawn", "-i", "/img/zus.raw"])).as_deref(),
            Some("zus")
        );
        assert_eq!(machine_name(&argv(&["systemd-nspawn", "-D", "/"])), None);
        assert_eq!(machine_name(&argv(&["systemd-nspawn", "-M", ""])), None);
        assert_eq!(machine_name(&argv(&["systemd-nspawn"])), None);
        // The payload's own arguments after the directory are not nspawn's.
        assert_eq!(
            machine_name(&argv(&[
                "systemd-nspawn",
                "-D",
                "/r/a",
                "--",
                "sh",
                "-M",
                "b"
            ]))
            .as_deref(),
            Some("a")
        );
        assert_eq!(
            machine_name(&argv(&["systemd-nspawn", "-D", "/r/a", "sh", "-M", "b"])).as_deref(),
            Some("a")
        );
        assert_eq!(
            machine_name(&argv(&[
                "systemd-nspawn",
                "--bind",
                "/x:/y",
                "-qMaap",
                "-D/r/a"
            ]))
            .as_deref(),
            Some("aap")
        );
        assert_eq!(machine_name(&argv(&["systemd-nspawn", "-q", "-M"])), None);
    }

    #[test]
    fn names_from_the_machine_scope() {
        let t = TempTree::new("nspawn-scope");
        let mut n = Nspawn::new(t.root());
        let r = n
            .lookup(&facts(
                1,
                0,
                Some("/machine.slice/machine-my\\x2dbox.scope"),
            ))
            .named()
            .unwrap();
        assert_eq!(r.name, "my-box");
        assert_eq!(r.source, NameSource::Runtime("nspawn-scope"));
        assert!(n
            .lookup(&facts(1, 0, Some("/machine.slice/machine-x.scope/payload")))
            .named()
            .is_none());
        assert!(n
            .lookup(&facts(1, 0, Some("/user.slice/machine-x.scope")))
            .named()
            .is_none());
        assert!(n
            .lookup(&facts(1, 0, Some("/machine.slice/machine-bad\\x.scope")))
            .named()
            .is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parsers_survive_mutations(
            b in mutated(b"systemd-nspawn\0-M\0aap\0-D\0/srv/x\0--machine=y\0"),
            c in mutated(b"/machine.slice/machine-a\\x2db.scope"),
        ) {
            let args = crate::runtimes::procfs::parse_cmdline(&b);
            if let Some(n) = machine_name(&args) {
                // No longer than the command line as decoded: each invalid
                // byte becomes U+FFFD, three bytes, so not the raw length.
                prop_assert!(n.len() <= String::from_utf8_lossy(&b).len());
            }
            let _ = cgroup_machine(&String::from_utf8_lossy(&c));
        }
    }
}
