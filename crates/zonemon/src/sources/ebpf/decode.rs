//! Decoding the kernel's `struct zm_event` records into [`Observation`]s.
//!
//! This is the one place raw bytes from the ring buffer are interpreted; the
//! record type itself is generated from `zonemon.h` (beside this file) by build.rs.

use std::fmt;
use std::mem::size_of;

use zonemon_core::escape::bounded_lossy;
use zonemon_core::lineage::{Cmdline, Forebear, Lineage};
use zonemon_core::{Observation, ObservationKind};

use super::skel::types::{zm_event, zm_fork_event, zm_kind};

/// Why a ring-buffer record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is shorter than its kind's struct (`struct zm_event`, or
    /// `struct zm_fork_event` for INIT_FORK: the BPF object and this binary disagree).
    Short(usize, usize),
    /// The record's kind is not one of `enum zm_kind`.
    UnknownKind(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short(n, want) => write!(
                f,
                "kernel record of {n} bytes, expected {want} (mismatched BPF object?)"
            ),
            DecodeError::UnknownKind(k) => write!(f, "kernel record of unknown kind {k}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// `T`, a record type made of integers and byte arrays, from the start of `bytes`.
fn read<T: Copy>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Short(bytes.len(), size_of::<T>()));
    }
    // SAFETY: the length was checked, the record types are plain old data
    // (integers and byte arrays: any bit pattern is valid) and
    // read_unaligned makes no alignment assumption about the ring buffer's memory.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) })
}

/// Bytes of an INIT_FORK record before its creator's command line: the
/// shortest such record (it ends after the command line's own bytes).
const FORK_FIXED: usize = std::mem::offset_of!(zm_fork_event, creator_cmdline);

/// An INIT_FORK record, which ends after its creator's command line: what
/// it does not carry reads as zeros (and a command line longer than what it
/// carries as none).
fn read_fork(bytes: &[u8]) -> Result<zm_fork_event, DecodeError> {
    if bytes.len() < FORK_FIXED {
        return Err(DecodeError::Short(bytes.len(), FORK_FIXED));
    }
    let mut whole = [0u8; size_of::<zm_fork_event>()];
    let n = bytes.len().min(whole.len());
    whole[..n].copy_from_slice(&bytes[..n]);
    let mut fork: zm_fork_event = read(&whole)?;
    if usize::try_from(fork.creator_cmdline_len).map_or(true, |len| FORK_FIXED + len > n) {
        fork.creator_cmdline_len = 0;
    }
    Ok(fork)
}

/// Decodes one ring-buffer record into what the kernel saw.
pub fn decode(bytes: &[u8]) -> Result<Observation, DecodeError> {
    let raw: zm_event = read(bytes)?;
    let kind = match zm_kind(raw.kind) {
        zm_kind::ZM_KIND_INIT_FORK => ObservationKind::InitFork,
        zm_kind::ZM_KIND_INIT_EXEC => ObservationKind::InitExec,
        zm_kind::ZM_KIND_INIT_EXIT => ObservationKind::InitExit,
        zm_kind::ZM_KIND_INIT_FREE => ObservationKind::InitFree,
        zm_kind::ZM_KIND_OOM_VICTIM => ObservationKind::OomVictim,
        zm_kind::ZM_KIND_INIT_CGROUP => ObservationKind::InitCgroupMove,
        zm_kind(other) => return Err(DecodeError::UnknownKind(other)),
    };
    let mut obs = Observation::new(kind);
    obs.ts_ns = raw.ts_ns;
    obs.start_ns = raw.start_ns;
    obs.pidns = raw.pidns_inum;
    obs.parent_pidns = raw.parent_pidns_inum;
    obs.pidns_id = raw.ns_id;
    obs.parent_pidns_id = raw.parent_ns_id;
    obs.parent_init_pid = raw.parent_init_pid;
    obs.level = raw.level;
    obs.init_pid = raw.init_pid;
    obs.creator_pid = raw.creator_pid;
    obs.utsns = raw.utsns_inum;
    obs.exit_status = raw.exit_status;
    obs.victim_pid = raw.victim_pid;
    obs.comm = c_string(&raw.comm);
    obs.nodename = c_string(&raw.nodename);
    if kind == ObservationKind::InitFork {
        obs.lineage = Some(lineage(&read_fork(bytes)?));
    }
    Ok(obs)
}

/// Who was above the init, as the INIT_FORK record lists them (command
/// names as raw bytes), and the creator's command line when the record
/// carries it whole.
fn lineage(fork: &zm_fork_event) -> Lineage {
    let mut out = Lineage::default();
    for (dst, src) in out.forebears.iter_mut().zip(&fork.lineage) {
        let comm: Vec<u8> = src.comm.iter().map(|&c| c as u8).collect();
        *dst = Forebear::new(src.pid, &comm);
    }
    let len = usize::try_from(fork.creator_cmdline_len).unwrap_or(usize::MAX);
    out.creator_cmdline = fork
        .creator_cmdline
        .get(..len)
        .and_then(|chars| Cmdline::new(&chars.iter().map(|&c| c as u8).collect::<Vec<u8>>()));
    out
}

/// The bytes of a kernel char array up to its first NUL (or all of it), as bounded text.
fn c_string(chars: &[i8]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    bounded_lossy(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use zonemon_core::lineage::LINEAGE_LEN;

    /// The bytes the kernel would write for `e`.
    fn bytes_of<T>(e: &T) -> Vec<u8> {
        // SAFETY: the record types are repr(C) plain old data.
        unsafe { std::slice::from_raw_parts((e as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn chars<const N: usize>(s: &[u8]) -> [i8; N] {
        let mut a = [0i8; N];
        for (d, s) in a.iter_mut().zip(s) {
            *d = *s as i8;
        }
        a
    }

    fn exit_record() -> zm_event {
        zm_event {
            ts_ns: 200,
            start_ns: 100,
            kind: zm_kind::ZM_KIND_INIT_EXIT.0,
            pidns_inum: 4026532178,
            parent_pidns_inum: 4026531836,
            ns_id: 5609219,
            parent_ns_id: 4100,
            parent_init_pid: 0,
            level: 1,
            init_pid: 3764,
            utsns_inum: 4026532177,
            exit_status: 3 << 8,
            comm: chars(b"sh"),
            nodename: chars(b"aap"),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_every_field() {
        let o = decode(&bytes_of(&exit_record())).unwrap();
        assert_eq!(o.kind, ObservationKind::InitExit);
        assert_eq!((o.ts_ns, o.start_ns), (200, 100));
        assert_eq!(
            (o.pidns, o.parent_pidns, o.level),
            (4026532178, 4026531836, 1)
        );
        assert_eq!((o.pidns_id, o.parent_pidns_id), (5609219, 4100));
        assert_eq!(
            (o.init_pid, o.utsns, o.exit_status),
            (3764, 4026532177, 3 << 8)
        );
        assert_eq!((o.comm.as_str(), o.nodename.as_str()), ("sh", "aap"));
        let oom = zm_event {
            kind: zm_kind::ZM_KIND_OOM_VICTIM.0,
            victim_pid: 3770,
            ..exit_record()
        };
        let o = decode(&bytes_of(&oom)).unwrap();
        assert_eq!((o.kind, o.victim_pid), (ObservationKind::OomVictim, 3770));
    }

    #[test]
    fn each_kind() {
        for (k, want) in [
            (zm_kind::ZM_KIND_INIT_FORK, ObservationKind::InitFork),
            (zm_kind::ZM_KIND_INIT_EXEC, ObservationKind::InitExec),
            (zm_kind::ZM_KIND_INIT_EXIT, ObservationKind::InitExit),
            (zm_kind::ZM_KIND_INIT_FREE, ObservationKind::InitFree),
            (zm_kind::ZM_KIND_OOM_VICTIM, ObservationKind::OomVictim),
            (
                zm_kind::ZM_KIND_INIT_CGROUP,
                ObservationKind::InitCgroupMove,
            ),
        ] {
            // As long as a fork's record: the longest any kind has.
            let e = zm_fork_event {
                event: zm_event {
                    kind: k.0,
                    ..exit_record()
                },
                ..Default::default()
            };
            assert_eq!(decode(&bytes_of(&e)).unwrap().kind, want);
        }
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        let b = bytes_of(&exit_record());
        let full = size_of::<zm_event>();
        assert_eq!(decode(&b[..10]), Err(DecodeError::Short(10, full)));
        // An INIT_FORK record without its lineage: the BPF object is another build's.
        let fork = zm_event {
            kind: zm_kind::ZM_KIND_INIT_FORK.0,
            ..exit_record()
        };
        assert_eq!(
            decode(&bytes_of(&fork)),
            Err(DecodeError::Short(full, FORK_FIXED))
        );
        let e = zm_event {
            kind: 99,
            ..exit_record()
        };
        assert_eq!(decode(&bytes_of(&e)), Err(DecodeError::UnknownKind(99)));
    }

    fn fork_record(lineage: [(u32, &[u8]); 4]) -> zm_fork_event {
        let mut f = zm_fork_event {
            event: zm_event {
                kind: zm_kind::ZM_KIND_INIT_FORK.0,
                creator_pid: lineage[0].0,
                ..exit_record()
            },
            ..Default::default()
        };
        assert_eq!(f.lineage.len(), LINEAGE_LEN, "zonemon.h's ZM_LINEAGE_LEN");
        for (dst, (pid, comm)) in f.lineage.iter_mut().zip(lineage) {
            dst.pid = pid;
            dst.comm = chars(comm);
        }
        f
    }

    #[test]
    fn a_fork_record_carries_its_lineage() {
        let f = fork_record([
            (90, b"runc:[1:CHILD]"),
            (89, b"runc:[0:PARENT]"),
            (80, b"runc"),
            (1, b"systemd"),
        ]);
        let o = decode(&bytes_of(&f)).unwrap();
        assert_eq!((o.kind, o.creator_pid), (ObservationKind::InitFork, 90));
        let l = o.lineage.expect("a fork's lineage");
        let got: Vec<(u32, &[u8])> = l.forebears.iter().map(|f| (f.pid, f.comm())).collect();
        assert_eq!(
            got,
            [
                (90, &b"runc:[1:CHILD]"[..]),
                (89, b"runc:[0:PARENT]"),
                (80, b"runc"),
                (1, b"systemd")
            ]
        );
        assert_eq!(
            l.creator_cmdline, None,
            "the record carries no command line"
        );
        // The other kinds carry none, even in a record as long as a fork's.
        let mut exit = bytes_of(&exit_record());
        exit.resize(size_of::<zm_fork_event>(), 0x41);
        assert_eq!(decode(&exit).unwrap().lineage, None);
    }

    #[test]
    fn a_fork_record_carries_its_creators_command_line_when_whole() {
        let mut f = fork_record([(90, b"crun"), (90, b"crun"), (80, b"bash"), (1, b"init")]);
        let argv = b"crun\0run\0-d\0aap\0";
        f.creator_cmdline = chars(argv);
        // The kernel sends the record up to the command line's last byte.
        let sent = |f: &zm_fork_event, len: usize| {
            let l = decode(&bytes_of(f)[..FORK_FIXED + len])
                .unwrap()
                .lineage
                .unwrap();
            assert_eq!(l.forebears[0].comm(), b"crun");
            l.creator_cmdline.map(|c| c.bytes().to_vec())
        };
        f.creator_cmdline_len = argv.len() as u32;
        assert_eq!(sent(&f, argv.len()).as_deref(), Some(&argv[..]));
        assert_eq!(sent(&f, 256).as_deref(), Some(&argv[..]), "a whole record");
        // Said to be longer than the record carries: none.
        assert_eq!(sent(&f, argv.len() - 1), None);
        assert_eq!(sent(&f, 0), None);
        // Cut short of its last NUL, not copied, or longer than a record holds: none.
        for len in [argv.len() as u32 - 1, 0, 257, u32::MAX] {
            f.creator_cmdline_len = len;
            assert_eq!(sent(&f, 256), None, "length {len}");
        }
    }

    proptest! {
        /// Command names are the processes' own: any 16 bytes (no NUL, invalid
        /// UTF-8) decode to at most 15 bytes, cut at the first NUL.
        #[test]
        fn hostile_lineage_comms(
            comms in prop::collection::vec(prop::array::uniform16(any::<u8>()), 4),
            pids in prop::array::uniform4(any::<u32>()),
        ) {
            let mut f = fork_record([(0, b""); 4]);
            for ((dst, comm), pid) in f.lineage.iter_mut().zip(&comms).zip(pids) {
                dst.pid = pid;
                dst.comm = chars(comm);
            }
            let l = decode(&bytes_of(&f)).unwrap().lineage.unwrap();
            for ((got, comm), pid) in l.forebears.iter().zip(&comms).zip(pids) {
                prop_assert_eq!(got.pid, pid);
                prop_assert!(got.comm().len() <= 15);
                prop_assert!(comm.starts_with(got.comm()));
                prop_assert!(!got.comm().contains(&0));
            }
        }
    }

    #[test]
    fn unterminated_and_hostile_strings() {
        // A nodename filling all 65 bytes without NUL, with control characters and invalid UTF-8.
        let mut node = [b'x'; 65];
        node[0] = b'\n';
        node[1] = 0xff;
        let e = zm_event {
            nodename: chars(&node),
            comm: chars(&[b'a'; 16]),
            ..exit_record()
        };
        let o = decode(&bytes_of(&e)).unwrap();
        assert_eq!(o.comm, "a".repeat(16));
        assert!(o.nodename.starts_with("\n\u{fffd}x"));
        assert_eq!(o.nodename.chars().count(), 65);
    }
}
