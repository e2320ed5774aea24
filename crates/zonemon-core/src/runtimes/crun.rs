//! crun used bare: `crun run -d aap` → `aap` (the container id).
//!
//! crun keeps `/run/crun/<id>/status` (JSON: `pid`, `process-start-time`
//! in clock ticks, `cgroup-path`, `bundle`, …) while the container exists;
//! see [`super::oci`] for the evidence used and its order.

use std::path::Path;
use std::sync::Arc;

use super::jsonpick::{self, Keep};
use super::oci::{OciResolver, OciRuntime, OciState};
use super::probe::Probe;
use super::resolver::RuntimeResolver;
use crate::naming::ResolvedName;

/// crun's default state directory, below the root.
pub const STATE_DIR: &str = "run/crun";

/// Parses crun's `status` file: its init's PID and start time.
pub fn parse_status(bytes: &[u8]) -> Option<OciState> {
    const KEYS: Keep = Keep::Keys(&[("pid", Keep::All), ("process-start-time", Keep::All)]);
    let v = jsonpick::parse(bytes, KEYS)?;
    let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
    (pid > 0).then_some(OciState {
        pid,
        start_ticks: v.get("process-start-time").and_then(|s| s.as_u64()),
    })
}

/// crun's layout.
pub const CRUN: OciRuntime = OciRuntime {
    program: "crun",
    runtime: "crun",
    state_dir: STATE_DIR,
    state_file: "status",
    label_state: "crun-status",
    label_argv: "crun-argv",
    label_cgroup: "crun-cgroup",
    comms: &[
        "crun",
        "conmon",
        "containerd-shim*",
        "dockerd",
        "containerd",
    ],
    parse: parse_status,
};

/// Names containers that crun made by itself.
pub struct Crun {
    root: Arc<Path>,
    inner: OciResolver,
}

impl Crun {
    /// A crun resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        Crun {
            root: Arc::from(root),
            inner: OciResolver::new(CRUN, root),
        }
    }
}

impl RuntimeResolver for Crun {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        self.inner.resolve(probe)
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        self.inner.could_claim_later(probe)
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(self.inner.comms())
    }
}

super::resolver::standalone_resolver!(Crun);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameResolver, NameSource, ZoneFacts};
    use crate::runtimes::testutil::{facts, mutated, TempTree, CASES};
    use proptest::prelude::*;

    /// crun 1.8's `status` file, as it writes it.
    fn status(pid: u32, start: u64, id: &str) -> String {
        format!(
            "{{\n    \"pid\": {pid},\n    \"process-start-time\": {start},\n    \"cgroup-path\": \"/{id}\",\n    \"scope\": \"\",\n    \"rootfs\": \"rootfs\",\n    \"systemd-cgroup\": false,\n    \"bundle\": \"/tmp/zmrt/bundle\",\n    \"created\": \"2026-11-26T05:39:06.571199Z\",\n    \"owner\": \"root\",\n    \"detached\": true,\n    \"external_descriptors\": \"[\\\"/dev/null\\\",\\\"/dev/null\\\",\\\"/dev/null\\\"]\"\n}}\n"
        )
    }

    #[test]
    fn names_from_status() {
        let t = TempTree::new("crun");
        t.proc(
            300,
            1,
            72114,
            &[300, 1],
            &["sleep"],
            "0::/zmrt-crun1\n10:hugetlb:/\n",
        );
        t.write(
            &format!("{STATE_DIR}/zmrt-crun1/status"),
            status(300, 72114, "zmrt-crun1"),
        );
        t.write(&format!("{STATE_DIR}/zmrt-crun1/config.json"), "{}");
        let r = Crun::new(t.root())
            .lookup(&facts(300, 0, Some("/zmrt-crun1")))
            .named()
            .expect("named");
        assert_eq!(r.name, "zmrt-crun1");
        assert_eq!(r.source, NameSource::Runtime("crun-status"));
        assert_eq!(r.runtime.as_deref(), Some("crun"));
        assert_eq!(r.container_id.as_deref(), Some("zmrt-crun1"));
    }

    #[test]
    fn names_by_argv_at_fork_and_honours_root() {
        let t = TempTree::new("crun-argv");
        t.proc(300, 250, 72114, &[300, 1], &["crun"], "0::/\n");
        t.proc(
            250,
            1,
            72110,
            &[250],
            &[
                "crun",
                "--root",
                "/var/run/mine",
                "run",
                "--bundle",
                "/b",
                "zmrt-c",
            ],
            "0::/\n",
        );
        let mut c = Crun::new(t.root());
        assert_eq!(
            c.lookup(&facts(300, 250, None)).named().unwrap().source,
            NameSource::Runtime("crun-argv")
        );
        t.write("var/run/mine/zmrt-c/status", status(300, 72114, "zmrt-c"));
        assert_eq!(
            c.lookup(&facts(300, 250, None)).named().unwrap().source,
            NameSource::Runtime("crun-status")
        );
    }

    /// At the fork, with the kernel's lineage listing crun above the init and
    /// no cgroup naming the container yet, crun's command line names the zone
    /// and its status is not read (crun writes it after the init exists).
    #[test]
    fn at_the_fork_crun_is_named_by_its_command_line_without_reading_its_status() {
        use crate::lineage::{Forebear, Lineage};
        let t = TempTree::new("crun-fork");
        t.proc(300, 250, 72114, &[300, 1], &["crun"], "0::/\n");
        t.proc(
            250,
            1,
            72110,
            &[250],
            &["crun", "run", "-d", "zmrt-c"],
            "0::/\n",
        );
        t.write(
            &format!("{STATE_DIR}/zmrt-c/status"),
            status(300, 72114, "zmrt-c"),
        );
        let mut c = Crun::new(t.root());
        let at_fork = ZoneFacts {
            lineage: Some(Lineage::new([
                Forebear::new(250, b"crun"),
                Forebear::new(250, b"crun"),
                Forebear::default(),
                Forebear::default(),
            ])),
            more_cgroups: Some(&[]),
            ..facts(300, 250, None)
        };
        let named = c.lookup(&at_fork).named().expect("by argv");
        assert_eq!(named.name, "zmrt-c");
        assert_eq!(named.source, NameSource::Runtime("crun-argv"));
        // Later (no lineage: the exec, a rescan), the status names it.
        let later = c.lookup(&facts(300, 250, None)).named().unwrap();
        assert_eq!(later.source, NameSource::Runtime("crun-status"));
    }

    #[test]
    fn refuses_symlinked_status() {
        let t = TempTree::new("crun-symlink");
        t.proc(300, 1, 72114, &[300, 1], &["sleep"], "0::/x\n");
        t.write("elsewhere/status", status(300, 72114, "x"));
        t.mkdir(&format!("{STATE_DIR}/x"));
        std::os::unix::fs::symlink(
            t.path("elsewhere/status"),
            t.path(&format!("{STATE_DIR}/x/status")),
        )
        .unwrap();
        std::os::unix::fs::symlink(t.path("elsewhere"), t.path(&format!("{STATE_DIR}/y"))).unwrap();
        assert!(Crun::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parser_survives_mutations(input in mutated(status(300, 72114, "aap"))) {
            let _ = parse_status(&input);
        }
    }

    #[test]
    fn parser_reads_the_seed_and_rejects_other_formats() {
        let seed = status(300, 72114, "aap");
        assert_eq!(parse_status(seed.as_bytes()).unwrap().pid, 300);
        assert!(parse_status(b"pid=300").is_none());
    }
}
