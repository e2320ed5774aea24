//! What bare OCI runtimes (runc, crun) have in common: a state directory
//! with one subdirectory per container id, holding a file that records the
//! container's init PID and start time.
//!
//! The container id is the name the user gave (`runc run aap`). Evidence,
//! best first, while the runtime is making the zone (it is above the init):
//! the container the init's cgroup names (the runtimes' default cgroup is
//! `/<id>`), when its state records the init or its directory in the
//! default state directory was made seconds ago and has no state yet (the
//! runtime makes it before the init): with the kernel's lineage, no command
//! line is read for it; else the runtime's command line (`runc run -d aap`,
//! `crun create … aap`): that id's state if it records the init, else the
//! command line alone (no directory scan: no other container's state can
//! record this init). Otherwise an
//! index of the state directory by init PID (rebuilt only when the
//! directory's mtime says a container came or went, so for the many zones
//! no runtime made it costs one `stat`), and, while a state was not written
//! at the last scan, the id the init's cgroup suggests (the runtimes'
//! default cgroup is `/<id>`). A state file names the zone only if its PID
//! and start time are the init's. Zones under a container manager (conmon,
//! a containerd shim) are left to that manager's resolver.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::fsread::{self, FileCache, Miss, MAX_STATE_FILE};
use super::probe::{Ancestor, Probe};
use super::procfs;
use super::resolver::{resolved, valid_id};
use crate::naming::ResolvedName;

/// Most state directory entries scanned for the init's PID.
const MAX_SCAN: usize = 4096;

/// A container directory without its state file for longer than this is a
/// leftover (a `runc create` killed half-way), not a container being created:
/// it no longer keeps the index incomplete (runtimes write the state within
/// milliseconds of making the directory).
const CREATING_AT_MOST: Duration = Duration::from_secs(5);

/// The init a runtime's state file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OciState {
    /// Host PID of the container's init.
    pub pid: u32,
    /// Its start time in clock ticks since boot, when recorded.
    pub start_ticks: Option<u64>,
}

/// A bare OCI runtime's layout.
#[derive(Debug, Clone, Copy)]
pub struct OciRuntime {
    /// Its program name (`runc`).
    pub program: &'static str,
    /// Its runtime name in events (`runc`).
    pub runtime: &'static str,
    /// Its default state directory, below the root (`run/runc`).
    pub state_dir: &'static str,
    /// The state file in each container's directory (`state.json`).
    pub state_file: &'static str,
    /// The label when the state file names the zone.
    pub label_state: &'static str,
    /// The label when the runtime's command line names it.
    pub label_argv: &'static str,
    /// The label when the init's cgroup names the container the runtime is making.
    pub label_cgroup: &'static str,
    /// Parses the state file.
    pub parse: fn(&[u8]) -> Option<OciState>,
    /// The command names of the processes above a zone whose command lines
    /// it reads: its own `program`'s, and the managers' ([`MANAGERS`]).
    pub comms: &'static [&'static str],
}

/// Global options of runc and crun that take a value (before the subcommand).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--log-level",
    "--criu",
    "--rootless",
    "--cgroup-manager",
];

/// The subcommand, container id and `--root` of a runc/crun command line
/// that creates a container (`run` or `create`; the id is the last argument).
pub fn parse_runtime_argv(args: &[String]) -> Option<(&str, &str, Option<&str>)> {
    let mut root = None;
    let mut i = 1;
    let sub = loop {
        let a = args.get(i)?.as_str();
        i += 1;
        if let Some((k, v)) = a.split_once('=') {
            if k == "--root" {
                root = Some(v);
            }
            continue;
        }
        if GLOBAL_WITH_VALUE.contains(&a) {
            let v = args.get(i)?.as_str();
            if a == "--root" {
                root = Some(v);
            }
            i += 1;
            continue;
        }
        if !a.starts_with('-') {
            break a;
        }
    };
    if !matches!(sub, "run" | "create") || i >= args.len() {
        return None;
    }
    let id = args.last()?.as_str();
    (valid_id(id) && !id.starts_with('-')).then_some((sub, id, root))
}

/// The container managers that run OCI runtimes for their own containers
/// (exact program names, or a prefix ending in `*`).
pub const MANAGERS: &[&str] = &["conmon", "containerd-shim*", "dockerd", "containerd"];

/// Whether `a` is a container manager ([`MANAGERS`]).
fn is_manager(a: &Ancestor) -> bool {
    procfs::program_is_one_of(&a.args, MANAGERS)
}

/// Resolves a bare OCI runtime's containers.
pub struct OciResolver {
    rt: OciRuntime,
    cache: FileCache<OciState>,
    index: Option<ScanIndex>,
    /// The monitor's own cgroup paths (but the root), from `<root>/proc/self/cgroup`.
    own_cgroups: Vec<String>,
}

impl OciResolver {
    /// A resolver for runtime `rt`, on the host whose root is `root`.
    pub fn new(rt: OciRuntime, root: &Path) -> Self {
        let own = fsread::open_proc(&root.join("proc/self/cgroup"))
            .and_then(|mut f| fsread::read_prefix(&mut f, 64 * 1024))
            .map(|b| procfs::parse_cgroup_paths(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        OciResolver {
            rt,
            cache: FileCache::new(MAX_SCAN),
            index: None,
            own_cgroups: own.into_iter().filter(|p| p != "/").collect(),
        }
    }

    /// The container ids the init's cgroups suggest (the runtimes' default
    /// cgroup is `/<id>`), each once. A cgroup the monitor is in itself is
    /// none of a container's own: an init still in it (just forked, not yet
    /// moved into its container's cgroup) inherited it, as every process of
    /// the host that shares the monitor's cgroup in some hierarchy does.
    fn cgroup_ids<'p>(&self, probe: &'p Probe<'_>) -> Vec<&'p str> {
        let mut ids: Vec<&str> = Vec::new();
        for path in probe.cgroups() {
            if self.own_cgroups.contains(path) {
                continue;
            }
            match super::cgroup::last(path) {
                Some(id) if valid_id(id) && !ids.contains(&id) => ids.push(id),
                _ => {}
            }
        }
        ids
    }

    fn state(&mut self, dir: &Path, id: &str) -> Option<OciState> {
        self.state_or(dir, id, Miss::Checked)
    }

    /// Container `id`'s state, a missing state file leading to `miss`.
    fn state_or(&mut self, dir: &Path, id: &str, miss: Miss) -> Option<OciState> {
        let rel = PathBuf::from(id).join(self.rt.state_file);
        self.cache
            .get_or(dir, &rel, MAX_STATE_FILE, miss, self.rt.parse)
    }

    /// Whether container `id`'s state file exists in any form (even a symlink or garbage).
    fn state_file_exists(&self, dir: &Path, id: &str) -> bool {
        dir.join(id)
            .join(self.rt.state_file)
            .symlink_metadata()
            .is_ok()
    }

    /// Whether container `id` may be being created right now: its state
    /// file is missing and its directory changed less than
    /// [`CREATING_AT_MOST`] ago.
    fn being_created(&self, dir: &Path, id: &str) -> bool {
        !self.state_file_exists(dir, id) && recently_made(dir, id)
    }

    /// The container the runtime is making for the zone, as the init's cgroup
    /// names it (see the module's doc), without its command line; `None`
    /// when no cgroup names one so.
    fn making_by_cgroup(&mut self, probe: &Probe<'_>, dir: &Path) -> Option<ResolvedName> {
        for id in self.cgroup_ids(probe) {
            // A state file missing is taken as it is: the directory's own `stat` follows.
            match self.state_or(dir, id, Miss::Taken) {
                Some(s) if Self::matches(probe, &s) => {
                    return resolved(id, self.rt.label_state, self.rt.runtime, Some(id));
                }
                Some(_) => {} // another init's container
                None if recently_made(dir, id) => {
                    return resolved(id, self.rt.label_cgroup, self.rt.runtime, Some(id));
                }
                None => {}
            }
        }
        None
    }

    fn matches(probe: &Probe<'_>, s: &OciState) -> bool {
        s.pid == probe.facts().init_pid
            && match (s.start_ticks, probe.init_start_ticks()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Names the zone, if this runtime made it.
    pub fn resolve(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        if probe.ancestors_like(MANAGERS).any(is_manager) {
            return None;
        }
        // The runtime above the init: the kernel's lineage says so by command name alone;
        // without it, the processes above are read.
        let program = self.rt.program;
        let making = probe.lists_one_of(&[program]).unwrap_or_else(|| {
            probe
                .ancestors_like(&[program])
                .any(|a| procfs::program(&a.args) == program)
        });
        if making {
            let dir = probe.path(self.rt.state_dir);
            if let Some(named) = self.making_by_cgroup(probe, &dir) {
                return Some(named);
            }
        }
        let argv = probe
            .ancestors_like(&[self.rt.program])
            .filter(|a| procfs::program(&a.args) == self.rt.program)
            .find_map(|a| parse_runtime_argv(&a.args));
        let dir = match argv.and_then(|(_, _, root)| root) {
            Some(r) if r.starts_with('/') => probe.root().join(r.trim_start_matches('/')),
            _ => probe.path(self.rt.state_dir),
        };
        let pid = probe.facts().init_pid;
        if let Some((_, id, _)) = argv {
            // This runtime is making the zone right now under that id: its state, once written,
            // is the only one that can record this init, so no directory scan is needed. Not
            // written yet (the usual case), the command line names the zone all the same: the
            // state directory's path is not checked again. At the fork (the lookup the kernel's
            // lineage comes with) the runtime writes the state only after the init exists: it
            // is not looked for, a system call saved for the same name and id.
            let at_fork = probe.facts().lineage.is_some();
            if !at_fork
                && self
                    .state_or(&dir, id, Miss::Taken)
                    .is_some_and(|s| Self::matches(probe, &s))
            {
                return resolved(id, self.rt.label_state, self.rt.runtime, Some(id));
            }
            return resolved(id, self.rt.label_argv, self.rt.runtime, Some(id));
        }
        // The state directory's index first: unchanged since the last look, it costs one stat.
        let (complete, owners) = {
            let ix = self.scan(&dir);
            (
                !ix.incomplete,
                ix.by_pid.get(&pid).cloned().unwrap_or_default(),
            )
        };
        for id in &owners {
            if self
                .state(&dir, id)
                .is_some_and(|s| Self::matches(probe, &s))
            {
                return resolved(id, self.rt.label_state, self.rt.runtime, Some(id));
            }
        }
        if !complete {
            // A container's state was not written at the scan: try the ids the zone suggests.
            for id in self.cgroup_ids(probe) {
                if self
                    .state(&dir, id)
                    .is_some_and(|s| Self::matches(probe, &s))
                {
                    return resolved(id, self.rt.label_state, self.rt.runtime, Some(id));
                }
            }
        }
        None
    }

    /// The command names of the processes whose command lines it reads.
    pub fn comms(&self) -> &'static [&'static str] {
        self.rt.comms
    }

    /// Whether this runtime may still name the zone once its state is
    /// written: the runtime is above the init, or some container's state was
    /// missing at the last scan (one being created right now).
    pub fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        probe.shows_signs_of(&[self.rt.program], &[])
            || self.index.as_ref().is_none_or(|ix| ix.incomplete)
    }

    /// The state directory's index, init PID → container ids, rebuilt only
    /// when the directory changed (a container came or went: its mtime) or
    /// when a container's state file did not exist yet at the last scan. A
    /// missing directory is an empty, complete index.
    fn scan(&mut self, dir: &Path) -> &ScanIndex {
        let key = dir_key(dir);
        let fresh = matches!(&self.index, Some(ix) if ix.key == key && !ix.incomplete);
        if !fresh {
            let mut by_pid: HashMap<u32, Vec<String>> = HashMap::new();
            let mut incomplete = false;
            if key.is_some() {
                for id in fsread::list_beneath(dir, Path::new(""))
                    .into_iter()
                    .take(MAX_SCAN)
                {
                    if !valid_id(&id) {
                        continue;
                    }
                    match self.state(dir, &id) {
                        // A stale state (its init long gone) may record a reused PID: keep every owner.
                        Some(s) => by_pid.entry(s.pid).or_default().push(id),
                        // Not written yet: the runtime is creating this container; look again.
                        None if self.being_created(dir, &id) => incomplete = true,
                        // There but unreadable or malformed (runtimes write it whole, by rename),
                        // or never written (its creator died): a leftover must not make every
                        // later lookup rescan.
                        None => {}
                    }
                }
            }
            self.index = Some(ScanIndex {
                key,
                incomplete,
                by_pid,
            });
        }
        self.index.as_ref().expect("set above")
    }
}

/// Whether `dir/id` is a directory (not a symlink) that changed less than
/// [`CREATING_AT_MOST`] ago (or in the future: the clock was set back).
fn recently_made(dir: &Path, id: &str) -> bool {
    let Ok(m) = dir.join(id).symlink_metadata() else {
        return false; // gone meanwhile, or never there
    };
    let Ok(changed) = m.modified() else {
        return false;
    };
    m.is_dir()
        && SystemTime::now()
            .duration_since(changed)
            .map_or(true, |age| age <= CREATING_AT_MOST)
}

/// What identifies a version of a directory's list of entries: its inode and modification time.
fn dir_key(dir: &Path) -> Option<(u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir).ok()?;
    m.is_dir().then(|| (m.ino(), m.mtime(), m.mtime_nsec()))
}

/// A scan of a state directory.
#[derive(Debug)]
struct ScanIndex {
    /// The directory's [`dir_key`] at the scan (`None`: it did not exist).
    key: Option<(u64, i64, i64)>,
    /// Whether some container's state could not be read at the scan.
    incomplete: bool,
    /// Container ids by the init PID their state records.
    by_pid: HashMap<u32, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::{mutated, CASES};
    use proptest::prelude::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn runtime_command_lines() {
        assert_eq!(
            parse_runtime_argv(&argv(&["runc", "run", "-d", "aap"])),
            Some(("run", "aap", None))
        );
        assert_eq!(
            parse_runtime_argv(&argv(&[
                "runc",
                "--root",
                "/x",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/b",
                "aap"
            ])),
            Some(("create", "aap", Some("/x")))
        );
        assert_eq!(
            parse_runtime_argv(&argv(&["crun", "--root=/r", "run", "aap"])),
            Some(("run", "aap", Some("/r")))
        );
        assert_eq!(parse_runtime_argv(&argv(&["runc", "init"])), None);
        assert_eq!(parse_runtime_argv(&argv(&["runc", "start", "aap"])), None);
        assert_eq!(parse_runtime_argv(&argv(&["runc", "run"])), None);
        assert_eq!(parse_runtime_argv(&argv(&["runc", "run", "../x"])), None);
        assert_eq!(parse_runtime_argv(&argv(&["runc", "--root"])), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn argv_parser_survives_mutations(
            b in mutated(b"runc\0--root\0/run/runc\0run\0-d\0--bundle\0/b\0aap\0")
        ) {
            let args = procfs::parse_cmdline(&b);
            if let Some((_, id, _)) = parse_runtime_argv(&args) {
                prop_assert!(valid_id(id));
            }
        }
    }
}
