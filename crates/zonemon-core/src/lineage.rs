//! Who was above a zone's init when it was forked, as the kernel saw it.
//!
//! The eBPF source's INIT_FORK record carries the creator and the
//! generations above the init (host PID and command name, `task->comm`),
//! so that the name resolvers need not walk `/proc/<pid>/stat` to find
//! them, and need not read the command line of a process whose command
//! name no runtime uses (see `runtimes::comms`); and the creator's command
//! line, copied from its memory at the fork ([`Cmdline`]), so that theirs
//! need not be read at all. A command name is 15 bytes
//! at most, truncated, and settable by the process itself: it is hostile
//! input, kept as raw bytes, used only to choose what to read, never as a name.

/// Length of a kernel command name with its NUL (the kernel's `TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// Processes in a [`Lineage`]: the creator and three generations above the init.
pub const LINEAGE_LEN: usize = 4;

/// A process above a zone's init, as it was when the init was forked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forebear {
    /// Host PID (0: none).
    pub pid: u32,
    /// Its command name's bytes, NUL-padded (any bytes: the process sets them).
    comm: [u8; COMM_LEN],
}

impl Forebear {
    /// Process `pid` named `comm` (bytes after the first NUL, and past
    /// [`COMM_LEN`] - 1 bytes, are dropped, as the kernel would).
    pub fn new(pid: u32, comm: &[u8]) -> Self {
        let mut bytes = [0u8; COMM_LEN];
        let len = comm
            .iter()
            .take(COMM_LEN - 1)
            .take_while(|&&b| b != 0)
            .count();
        bytes[..len].copy_from_slice(&comm[..len]);
        Forebear { pid, comm: bytes }
    }

    /// Its command name: at most [`COMM_LEN`] - 1 bytes, no NUL.
    pub fn comm(&self) -> &[u8] {
        let len = self.comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        &self.comm[..len.min(COMM_LEN - 1)]
    }
}

/// Longest creator's command line a [`Lineage`] carries (zonemon.h's `ZM_CMDLINE_LEN`).
pub const CMDLINE_LEN: usize = 256;

/// A process's command line as the kernel copied it from the process's
/// memory: NUL-separated arguments, the last byte a NUL, exactly as
/// `/proc/<pid>/cmdline` gives it; whole, at most [`CMDLINE_LEN`] bytes.
/// Hostile input, like any command line: the process wrote it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cmdline {
    bytes: [u8; CMDLINE_LEN],
    len: u16,
}

impl Cmdline {
    /// `bytes` when they are a whole command line that fits: not empty, at
    /// most [`CMDLINE_LEN`] bytes, ending with a NUL; else `None`.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > CMDLINE_LEN || bytes.last() != Some(&0) {
            return None;
        }
        let mut out = Cmdline {
            bytes: [0; CMDLINE_LEN],
            len: bytes.len() as u16,
        };
        out.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(out)
    }

    /// The command line's bytes, as `/proc/<pid>/cmdline` gives them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Cmdline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cmdline({:?})", String::from_utf8_lossy(self.bytes()))
    }
}

/// The processes above a zone's init when it was forked, and the command
/// line of the one that forked it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lineage {
    /// `[0]` the creator (the process that forked the init), `[1]` the
    /// init's parent (the creator, or the creator's parent when it forked
    /// with `CLONE_PARENT`), `[2]` and `[3]` the generations above that. A
    /// missing one has PID 0.
    pub forebears: [Forebear; LINEAGE_LEN],
    /// The creator's command line as it was at the fork, when the kernel
    /// copied it whole (`None`: read `/proc/<creator>/cmdline`).
    pub creator_cmdline: Option<Cmdline>,
}

impl Lineage {
    /// These processes, without the creator's command line.
    pub fn new(forebears: [Forebear; LINEAGE_LEN]) -> Self {
        Lineage {
            forebears,
            creator_cmdline: None,
        }
    }

    /// The processes in order with their index, each once, leaving out none
    /// (PID 0), host PID 1 (nobody's runtime) and `init_pid` itself: the
    /// processes a resolver may look at, as `runtimes::probe::Probe::ancestors`
    /// lists them.
    pub fn above(&self, init_pid: u32) -> impl Iterator<Item = (usize, &Forebear)> {
        let all = &self.forebears;
        all.iter().enumerate().filter(move |&(i, f)| {
            let first = !all[..i].iter().any(|o| o.pid == f.pid);
            f.pid > 1 && f.pid != init_pid && first
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comm_is_bounded_and_cut_at_nul() {
        assert_eq!(Forebear::new(5, b"runc").comm(), b"runc");
        assert_eq!(Forebear::new(5, b"a\0b").comm(), b"a");
        assert_eq!(
            Forebear::new(5, b"containerd-shim-runc-v2").comm(),
            b"containerd-shim"
        );
        assert_eq!(Forebear::new(5, b"").comm(), b"");
    }

    #[test]
    fn above_lists_each_process_once() {
        let l = Lineage::new([
            Forebear::new(50, b"unshare"),
            Forebear::new(50, b"unshare"),
            Forebear::new(40, b"bash"),
            Forebear::new(1, b"init"),
        ]);
        let pids: Vec<(usize, u32)> = l.above(100).map(|(i, f)| (i, f.pid)).collect();
        assert_eq!(pids, [(0, 50), (2, 40)]);
        assert_eq!(l.above(40).count(), 1, "never the init itself");
        assert_eq!(Lineage::default().above(1).count(), 0);
    }

    proptest! {
        #[test]
        fn any_comm_bytes_stay_bounded(pid in any::<u32>(), comm in prop::collection::vec(any::<u8>(), 0..64)) {
            let f = Forebear::new(pid, &comm);
            prop_assert!(f.comm().len() < COMM_LEN);
            prop_assert!(!f.comm().contains(&0));
            prop_assert!(comm.starts_with(f.comm()));
        }

        #[test]
        fn a_cmdline_is_whole_or_none(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let whole = !bytes.is_empty() && bytes.len() <= CMDLINE_LEN && bytes.last() == Some(&0);
            let c = Cmdline::new(&bytes);
            prop_assert_eq!(c.is_some(), whole);
            if let Some(c) = c {
                prop_assert_eq!(c.bytes(), &bytes[..]);
            }
        }
    }
}
