//! Decoding the kernel's `struct zm_event` records into [`Observation`]s.
//!
//! This is the one place raw bytes from the ring buffer are interpreted; the
//! record type itself is generated from `zonemon.h` (beside this file) by build.rs.

use std::fmt;
use std::mem::size_of;

use zonemon_core::escape::bounded_lossy;
use zonemon_core::{Observation, ObservationKind};

use super::skel::types::{zm_event, zm_kind};

/// Why a ring-buffer record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is shorter than `struct zm_event` (the BPF object and this binary disagree).
    Short(usize),
    /// The record's kind is not one of `enum zm_kind`.
    UnknownKind(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short(n) => write!(
                f,
                "kernel record of {n} bytes, expected {} (mismatched BPF object?)",
                size_of::<zm_event>()
            ),
            DecodeError::UnknownKind(k) => write!(f, "kernel record of unknown kind {k}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one ring-buffer record into what the kernel saw.
pub fn decode(bytes: &[u8]) -> Result<Observation, DecodeError> {
    if bytes.len() < size_of::<zm_event>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: the length was checked, zm_event is plain old data (integers
    // and byte arrays, any bit pattern is valid) and read_unaligned makes no
    // alignment assumption about the ring buffer's memory.
    let raw: zm_event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let kind = match zm_kind(raw.kind) {
        zm_kind::ZM_KIND_INIT_FORK => ObservationKind::InitFork,
        zm_kind::ZM_KIND_INIT_EXEC => ObservationKind::InitExec,
        zm_kind::ZM_KIND_INIT_EXIT => ObservationKind::InitExit,
        zm_kind::ZM_KIND_INIT_FREE => ObservationKind::InitFree,
        zm_kind::ZM_KIND_OOM_VICTIM => ObservationKind::OomVictim,
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
    Ok(obs)
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

    /// The bytes the kernel would write for `e`.
    fn bytes_of(e: &zm_event) -> Vec<u8> {
        // SAFETY: zm_event is repr(C) plain old data.
        unsafe {
            std::slice::from_raw_parts((e as *const zm_event).cast::<u8>(), size_of::<zm_event>())
        }
        .to_vec()
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
        ] {
            let e = zm_event {
                kind: k.0,
                ..exit_record()
            };
            assert_eq!(decode(&bytes_of(&e)).unwrap().kind, want);
        }
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        let b = bytes_of(&exit_record());
        assert_eq!(decode(&b[..10]), Err(DecodeError::Short(10)));
        let e = zm_event {
            kind: 99,
            ..exit_record()
        };
        assert_eq!(decode(&bytes_of(&e)), Err(DecodeError::UnknownKind(99)));
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
