//! Which processes above a zone are worth reading: their command names
//! (`task->comm`, from the kernel's [`crate::lineage::Lineage`]) against the
//! command names of the runtimes' processes.
//!
//! Reading a process's `/proc/<pid>/cmdline` right after it forked a zone's
//! init costs 50–90 µs here; most zones (a shell's `unshare`, a test
//! harness, a build sandbox) have no runtime above them at all. A resolver
//! asks for the processes of its own runtime
//! ([`super::probe::Probe::ancestors_like`]: Docker the shims, Podman
//! conmon), and only those are read; one that asks for every process
//! ([`super::probe::Probe::ancestors`]) gets those whose command name matches
//! what some resolver says it looks at
//! ([`super::resolver::RuntimeResolver::ancestor_comms`]). A process left
//! out is treated as if it had exited.
//!
//! A command name is the first 15 bytes of the name of the file the process
//! exec'd, or what it set itself (`prctl(PR_SET_NAME)`): hostile, like every
//! name. It only chooses what is read; a name always comes from what is read.
//! So a process that disguises its command name can only cost its zone a
//! runtime name it could as well have withheld by disguising its command line.

use crate::lineage::COMM_LEN;

/// Whether command name `comm` matches `pattern`: the same bytes, or, for a
/// pattern ending in `*`, starting with the bytes before it. A pattern
/// longer than a command name is matched as the kernel truncates it
/// (`containerd-shim-runc-v2` is `containerd-shim`).
pub fn comm_matches(pattern: &str, comm: &[u8]) -> bool {
    let max = COMM_LEN - 1;
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            let prefix = &prefix.as_bytes()[..prefix.len().min(max)];
            comm.starts_with(prefix)
        }
        None => {
            let p = pattern.as_bytes();
            comm == &p[..p.len().min(max)]
        }
    }
}

/// The command names whose processes' command lines the resolvers look at.
#[derive(Debug, Clone, Default)]
pub struct CommFilter {
    /// `None`: every process is read (a resolver did not say whose it looks at).
    patterns: Option<Vec<&'static str>>,
}

impl CommFilter {
    /// Every process's command line is read.
    pub fn all() -> Self {
        CommFilter { patterns: None }
    }

    /// The union of each resolver's patterns; every process when one of them is `None`.
    pub fn union<'a, I>(each: I) -> Self
    where
        I: IntoIterator<Item = Option<&'a [&'static str]>>,
    {
        let mut patterns: Vec<&'static str> = Vec::new();
        for p in each {
            let Some(p) = p else {
                return Self::all();
            };
            for &pattern in p {
                if !patterns.contains(&pattern) {
                    patterns.push(pattern);
                }
            }
        }
        CommFilter {
            patterns: Some(patterns),
        }
    }

    /// Whether a process named `comm` is worth reading.
    pub fn wants(&self, comm: &[u8]) -> bool {
        match &self.patterns {
            None => true,
            Some(p) => p.iter().any(|pattern| comm_matches(pattern, comm)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_prefix_and_truncated_patterns() {
        assert!(comm_matches("runc", b"runc"));
        assert!(
            !comm_matches("runc", b"runc:[1:CHILD]"),
            "runc's init stages"
        );
        assert!(!comm_matches("runc", b"run"));
        assert!(!comm_matches("runc", b"runtimes-1234ab"));
        assert!(comm_matches("containerd-shim*", b"containerd-shim"));
        assert!(!comm_matches("containerd-shim*", b"containerd"));
        assert!(comm_matches("containerd-shim-runc-v2", b"containerd-shim"));
        assert!(comm_matches("lxc*", b"lxc-start"));
        assert!(!comm_matches("conmon", b""));
        assert!(comm_matches("*", b""), "an empty prefix matches all");
    }

    #[test]
    fn a_filter_is_the_union_or_all() {
        let f = CommFilter::union([Some(&["conmon"][..]), Some(&["runc", "lxc*"][..])]);
        assert!(f.wants(b"conmon") && f.wants(b"runc") && f.wants(b"lxc-start"));
        assert!(!f.wants(b"bash") && !f.wants(b"unshare"));
        let all = CommFilter::union([Some(&["conmon"][..]), None]);
        assert!(
            all.wants(b"bash"),
            "a resolver that did not say reads every process"
        );
        assert!(CommFilter::all().wants(b""));
        assert!(!CommFilter::union([]).wants(b"runc"));
    }

    proptest! {
        /// Any bytes at all, NULs and invalid UTF-8 included: no panic, and a
        /// match only when the bytes really are the pattern's.
        #[test]
        fn hostile_comms(comm in prop::collection::vec(any::<u8>(), 0..COMM_LEN)) {
            let f = CommFilter::union([Some(&["runc", "containerd-shim*", "systemd-nspawn"][..])]);
            let wanted = f.wants(&comm);
            prop_assert_eq!(
                wanted,
                comm == b"runc" || comm == b"systemd-nspawn" || comm.starts_with(b"containerd-shim")
            );
        }
    }
}
