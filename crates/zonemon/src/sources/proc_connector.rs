//! The proc-connector source: the kernel's netlink process connector reports
//! every fork, exec and exit on the host; zonemon reads /proc to decide
//! whether a new process is a zone's init.
//!
//! What it can miss, and why: a zone whose init is gone before zonemon reads
//! its /proc entry (it lives microseconds) is never seen; the connector drops
//! messages when zonemon falls behind (reported as `lost`, then a resync); a
//! hostname set after the last exec is not seen; an init's exit is reported
//! when its main thread exits; and the connector has no event for a reaped
//! process, so `down` is reported together with `shutdown`.

use std::collections::HashMap;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{Context, Result};
use zonemon_core::procscan::{self, ProcZone};
use zonemon_core::{Observation, ObservationKind};

use super::Source;
use crate::pipeline::{boot_time_ns, clock_ns, Pipeline};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// Size of `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// Size of `struct cn_msg` before its payload.
const CN_MSG_HDR: usize = 20;
/// Offset of `event_data` in `struct proc_event` (what, cpu, timestamp_ns).
const PROC_EVENT_DATA: usize = 16;
/// Receive buffer asked of the kernel, so that bursts of host forks are not dropped.
const RCVBUF_BYTES: libc::c_int = 8 << 20;

/// A connector message about one process, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// `child` (a new process, or a thread when `child_pid != child_tgid`) was forked.
    Fork { child_pid: u32, child_tgid: u32 },
    /// Process `tgid` exec'd.
    Exec { tgid: u32 },
    /// Thread `pid` of process `tgid` exited with wait()-style `status`.
    Exit { pid: u32, tgid: u32, status: i32 },
}

/// A decoded connector message and its CLOCK_MONOTONIC timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped {
    /// What happened.
    pub event: ProcEvent,
    /// `ktime_get_ns()` when the kernel sent it.
    pub mono_ns: u64,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes the proc events in one datagram (several netlink messages may share it); skips the rest.
pub fn parse_datagram(buf: &[u8]) -> Vec<Stamped> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(len) = u32_at(buf, at) {
        let len = len as usize;
        if len < NLMSG_HDR || at + len > buf.len() {
            break;
        }
        if let Some(ev) = parse_message(&buf[at + NLMSG_HDR..at + len]) {
            out.push(ev);
        }
        at += (len + 3) & !3; // NLMSG_ALIGN
    }
    out
}

/// Decodes one netlink message's payload: a `cn_msg` carrying a `proc_event`.
fn parse_message(payload: &[u8]) -> Option<Stamped> {
    if u32_at(payload, 0)? != CN_IDX_PROC || u32_at(payload, 4)? != CN_VAL_PROC {
        return None;
    }
    let ev = payload.get(CN_MSG_HDR..)?;
    let what = u32_at(ev, 0)?;
    let mono_ns = u64::from_ne_bytes(ev.get(8..16)?.try_into().ok()?);
    let d = PROC_EVENT_DATA;
    let event = match what {
        PROC_EVENT_FORK => ProcEvent::Fork {
            child_pid: u32_at(ev, d + 8)?,
            child_tgid: u32_at(ev, d + 12)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec {
            tgid: u32_at(ev, d + 4)?,
        },
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: u32_at(ev, d)?,
            tgid: u32_at(ev, d + 4)?,
            status: u32_at(ev, d + 8)? as i32,
        },
        _ => return None,
    };
    Some(Stamped { event, mono_ns })
}

/// The proc connector socket and the zone inits it follows.
pub struct ProcConnectorSource {
    sock: OwnedFd,
    /// Zone inits being followed, by host PID.
    inits: HashMap<u32, ProcZone>,
    buf: Vec<u8>,
}

impl ProcConnectorSource {
    /// Subscribes to the kernel's process events (needs CAP_NET_ADMIN).
    pub fn open() -> Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context(
                "opening a NETLINK_CONNECTOR socket (kernel without CONFIG_PROC_EVENTS?)",
            );
        }
        // SAFETY: fd is fresh and ours.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain old data; zeroed is valid.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = CN_IDX_PROC;
        // SAFETY: valid socket and address of the stated size.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error())
                .context("joining the proc connector's group (needs CAP_NET_ADMIN)");
        }
        // Best effort: a large buffer makes drops rarer; drops are detected either way.
        // SAFETY: valid socket, int option.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&RCVBUF_BYTES as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as u32,
            )
        };
        let mut msg = Vec::with_capacity(NLMSG_HDR + CN_MSG_HDR + 4);
        let total = (NLMSG_HDR + CN_MSG_HDR + 4) as u32;
        msg.extend_from_slice(&total.to_ne_bytes());
        msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&std::process::id().to_ne_bytes());
        msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
        msg.extend_from_slice(&4u16.to_ne_bytes()); // len
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        // SAFETY: valid socket and buffer.
        let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error()).context("subscribing to process events");
        }
        Ok(ProcConnectorSource {
            sock,
            inits: HashMap::new(),
            buf: vec![0; 1 << 16],
        })
    }

    /// An observation of the followed init `zone`, of `kind`, at boot-time `ts_ns`.
    fn observation(&self, kind: ObservationKind, zone: &ProcZone, ts_ns: u64) -> Observation {
        let mut obs = zone.to_observation();
        obs.kind = kind;
        obs.ts_ns = ts_ns;
        if zone.level > 1 {
            obs.parent_init_pid = self
                .inits
                .values()
                .find(|z| z.pid_ns().same_as(zone.parent_ns()))
                .map_or(0, |z| z.init_pid);
        }
        obs
    }

    /// Turns one process event into observations of zone inits.
    fn handle(&mut self, ev: Stamped, mono_to_boot: i128, pipeline: &mut Pipeline) -> Result<()> {
        let ts = (ev.mono_ns as i128 + mono_to_boot).max(0) as u64;
        let proc_root = Path::new("/proc");
        match ev.event {
            ProcEvent::Fork {
                child_pid,
                child_tgid,
            } if child_pid == child_tgid => {
                // The cheap test first: most processes on a host are not a zone's init.
                let Ok(status) = std::fs::read_to_string(format!("/proc/{child_pid}/status"))
                else {
                    return Ok(());
                };
                let is_init = procscan::parse_nspid(&status)
                    .is_some_and(|ns| ns.len() > 1 && ns.last() == Some(&1));
                if let Some(zone) = is_init
                    .then(|| procscan::zone_at(proc_root, child_pid))
                    .flatten()
                {
                    let obs = self.observation(ObservationKind::InitFork, &zone, ts);
                    self.inits.insert(child_pid, zone);
                    pipeline.handle(obs)?;
                }
            }
            ProcEvent::Exec { tgid } if self.inits.contains_key(&tgid) => {
                if let Some(fresh) = procscan::zone_at(proc_root, tgid) {
                    let known = &self.inits[&tgid];
                    // Same init (the PID was not reused meanwhile): take the fresh facts, keep its identity.
                    if fresh.pid_ns().same_as(known.pid_ns()) {
                        let start_ns = known.start_ns;
                        self.inits.insert(tgid, ProcZone { start_ns, ..fresh });
                    }
                }
                let obs = self.observation(ObservationKind::InitExec, &self.inits[&tgid], ts);
                pipeline.handle(obs)?;
            }
            ProcEvent::Exit { pid, tgid, status } if pid == tgid => {
                if let Some(zone) = self.inits.remove(&pid) {
                    let mut exit = self.observation(ObservationKind::InitExit, &zone, ts);
                    exit.exit_status = status;
                    let free = self.observation(ObservationKind::InitFree, &zone, ts);
                    pipeline.handle(exit)?;
                    pipeline.handle(free)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Source for ProcConnectorSource {
    fn description(&self) -> String {
        "the proc connector".into()
    }

    fn wait_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn start(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        let zones = procscan::scan(Path::new("/proc"));
        pipeline.seed(&zones);
        self.inits = zones.into_iter().map(|z| (z.init_pid, z)).collect();
        Ok(())
    }

    fn drain(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        let mono_to_boot = clock_ns(libc::CLOCK_BOOTTIME) - clock_ns(libc::CLOCK_MONOTONIC);
        loop {
            // SAFETY: valid socket and buffer of the stated length.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(()),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        // The kernel dropped messages: the truth comes from /proc now.
                        self.inits = resync(pipeline, || procscan::scan(Path::new("/proc")))?;
                        continue;
                    }
                    _ => return Err(e).context("reading the proc connector"),
                }
            }
            for ev in parse_datagram(&self.buf[..n as usize]) {
                self.handle(ev, mono_to_boot, pipeline)?;
            }
        }
    }
}

/// Rebuilds the tracker's zones from one /proc `scan` after lost messages,
/// and returns the inits to follow from then on: the very zones the tracker
/// now knows (two scans would leave a window in which a zone could come or go
/// unseen by one of them, and its exit never be reported or be unknown).
fn resync(
    pipeline: &mut Pipeline,
    scan: impl FnOnce() -> Vec<ProcZone>,
) -> Result<HashMap<u32, ProcZone>> {
    let zones = pipeline.recover_with(None, boot_time_ns(), scan)?;
    Ok(zones.into_iter().map(|z| (z.init_pid, z)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One connector datagram as the kernel sends it: nlmsghdr, cn_msg, proc_event.
    fn datagram(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&123_456u64.to_ne_bytes());
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        let mut cn = Vec::new();
        cn.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        cn.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        cn.extend_from_slice(&[0; 8]);
        cn.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        cn.extend_from_slice(&[0; 2]);
        cn.extend_from_slice(&ev);
        let mut nl = Vec::new();
        nl.extend_from_slice(&((NLMSG_HDR + cn.len()) as u32).to_ne_bytes());
        nl.extend_from_slice(&[0; 12]);
        nl.extend_from_slice(&cn);
        nl
    }

    #[test]
    fn a_resync_follows_exactly_the_zones_the_tracker_learnt() {
        let out = crate::testsink::SharedBuf::default();
        let mut pipeline = crate::testsink::pipeline(out.clone());
        let zone = |init_pid| ProcZone {
            init_pid,
            pidns: 4026532000 + init_pid,
            level: 1,
            parent_pidns: 4026531836,
            pidns_id: 5_000_000 + u64::from(init_pid),
            parent_pidns_id: 0,
            parent_init_pid: 0,
            utsns: 0,
            nodename: String::new(),
            comm: "sleep".into(),
            cgroup: None,
            more_cgroups: Vec::new(),
            root: None,
            mntns: 0,
            start_ns: 1_000_000_000 * u64::from(init_pid),
            booted: true,
        };
        let inits = resync(&mut pipeline, || vec![zone(301), zone(302)]).unwrap();
        let mut followed: Vec<u32> = inits.keys().copied().collect();
        followed.sort_unstable();
        assert_eq!(followed, [301, 302]);
        let text = out.text();
        for pid in [301u32, 302] {
            assert!(
                text.contains(&format!("Zone pidns-{} booted", 4026532000 + pid)),
                "{text}"
            );
        }
    }

    #[test]
    fn decodes_fork_exec_exit() {
        let f = parse_datagram(&datagram(PROC_EVENT_FORK, &[10, 10, 11, 11]));
        assert_eq!(
            f,
            [Stamped {
                event: ProcEvent::Fork {
                    child_pid: 11,
                    child_tgid: 11
                },
                mono_ns: 123_456
            }]
        );
        let e = parse_datagram(&datagram(PROC_EVENT_EXEC, &[12, 11]));
        assert_eq!(e[0].event, ProcEvent::Exec { tgid: 11 });
        let x = parse_datagram(&datagram(PROC_EVENT_EXIT, &[11, 11, 3 << 8, 17, 10, 10]));
        assert_eq!(
            x[0].event,
            ProcEvent::Exit {
                pid: 11,
                tgid: 11,
                status: 3 << 8
            }
        );
        let mut two = datagram(PROC_EVENT_EXEC, &[1, 1]);
        two.extend(datagram(PROC_EVENT_EXEC, &[2, 2]));
        assert_eq!(parse_datagram(&two).len(), 2);
    }

    #[test]
    fn ignores_other_and_malformed_messages() {
        assert!(
            parse_datagram(&datagram(0x40, &[1, 1])).is_empty(),
            "uid change"
        );
        let d = datagram(PROC_EVENT_FORK, &[10, 10, 11, 11]);
        for cut in 0..d.len() {
            assert!(parse_datagram(&d[..cut]).is_empty(), "truncated at {cut}");
        }
        let mut bad = d.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_datagram(&bad).is_empty());
        let mut other = d;
        other[NLMSG_HDR..NLMSG_HDR + 4].copy_from_slice(&7u32.to_ne_bytes());
        assert!(
            parse_datagram(&other).is_empty(),
            "another connector's message"
        );
    }
}
