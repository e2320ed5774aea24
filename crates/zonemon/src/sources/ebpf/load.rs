//! Loading and attaching zonemon's BPF programs, with errors that say what to do.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{AsRawLibbpf, OpenObject, PrintLevel};
use zonemon_core::procscan::HostMounts;

use super::skel::first_ns::{types::zm_first_ns, FirstNsSkelBuilder};
use super::skel::types::zm_seed;
use super::skel::{OpenZonemonSkel, ZonemonSkel, ZonemonSkelBuilder};

/// Everything libbpf said while loading, kept to write out if the load fails.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn collect_libbpf_log(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
    }
}

/// The error when this process may not load BPF programs: no other source
/// can watch other users' processes either, so `--source auto` stops on it.
#[derive(Debug)]
pub struct NotPrivileged;

impl std::fmt::Display for NotPrivileged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "zonemon watch needs root, or the capabilities CAP_BPF and CAP_PERFMON, to load its eBPF \
             programs: run it with sudo (`zonemon list` works without)",
        )
    }
}

impl std::error::Error for NotPrivileged {}

/// Checks what loading needs and says what is missing: BTF and privileges.
pub fn preflight() -> Result<()> {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): zonemon's eBPF programs need \
             a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        );
    }
    let caps = effective_caps()
        .context("cannot read this process's capabilities from /proc/self/status")?;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        return Err(NotPrivileged.into());
    }
    Ok(())
}

/// The effective capability set of this process.
fn effective_caps() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .context("no CapEff line")?;
    Ok(u64::from_str_radix(hex.trim(), 16)?)
}

/// Opens, loads and attaches the BPF programs, with a ring buffer of `ring_bytes`.
///
/// On a load failure, libbpf's log (with the verifier's) is written to a file
/// whose path the error names.
pub fn load(storage: &mut MaybeUninit<OpenObject>, ring_bytes: u32) -> Result<ZonemonSkel<'_>> {
    preflight()?;
    libbpf_rs::set_print(Some((PrintLevel::Debug, collect_libbpf_log)));
    let result = open_and_load(storage, ring_bytes, has_prepare_exec());
    libbpf_rs::set_print(None);
    let log = std::mem::take(&mut *LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner()));
    let mut skel = match result {
        Ok(skel) => skel,
        Err(e) => {
            let path = write_log(&log);
            return Err(e.context(format!(
                "loading zonemon's eBPF programs failed; libbpf's and the verifier's log is in {}",
                path.display()
            )));
        }
    };
    skel.attach().context(
        "attaching to the sched_process_{fork,exit,free}, sched_prepare_exec (or sched_process_exec), mark_victim and cgroup_attach_task tracepoints (tp_btf) failed \
         (does this kernel allow BTF-typed BPF tracepoint programs, BPF_PROG_TYPE_TRACING?)",
    )?;
    Ok(skel)
}

/// Opens and loads the programs; `prepare_exec`: whether execs are seen at
/// `sched_prepare_exec` (`zm_exec`) or, without it, `sched_process_exec` (`zm_exec_done`).
fn open_and_load(
    storage: &mut MaybeUninit<OpenObject>,
    ring_bytes: u32,
    prepare_exec: bool,
) -> Result<ZonemonSkel<'_>> {
    let mut open = ZonemonSkelBuilder::default()
        .open(storage)
        .context("opening the BPF object")?;
    open.maps
        .events
        .set_max_entries(ring_bytes)
        .context("setting the ring buffer size")?;
    open.progs.zm_exec.set_autoload(prepare_exec);
    open.progs.zm_exec_done.set_autoload(!prepare_exec);
    let host = match HostMounts::read(Path::new("/proc")) {
        Ok(host) => Some(host),
        Err(e) => {
            tracing::warn!(
                "cannot read the host's mount namespace and root directory from /proc/1 ({e}): \
                 containers sharing the host's PID namespace (--pid=host) are not watched"
            );
            None
        }
    };
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("the BPF object has no read-only data section")?;
    if let Some(host) = &host {
        rodata.host_mntns = host.mntns;
        rodata.host_root_dev = host.kernel_root_dev();
        rodata.host_root_ino = host.root_ino;
    }
    let mark = rodata.boot_nsproxy_mark;
    let boot = host.map_or(0, |host| boot_nsproxy(host.mntns));
    set_boot_nsproxy(&mut open, mark, boot)?;
    Ok(open.load()?)
}

/// The address of the set of namespaces the kernel started with, if its
/// mount namespace is the host's (`host_mntns`); else 0. Then the tasks
/// holding that set (plain host processes, nearly all) cost one test;
/// without it (the host's mount namespace is another one, or the run fails)
/// they are told apart by their PID namespace's depth, only slower.
fn boot_nsproxy(host_mntns: u32) -> u64 {
    match first_namespaces() {
        Ok(first) if first.nsproxy != 0 && first.mntns_inum == host_mntns => first.nsproxy,
        Ok(_) => {
            tracing::debug!(
                "the kernel's first namespaces do not hold the host's mount namespace: \
                 host processes are told apart by their PID namespace's depth"
            );
            0
        }
        Err(e) => {
            tracing::debug!("cannot learn the kernel's first namespaces ({e:#})");
            0
        }
    }
}

/// Runs `first_ns.bpf.c`'s program (loaded for this call only): the set of
/// namespaces the kernel started with.
fn first_namespaces() -> Result<zm_first_ns> {
    let mut storage = MaybeUninit::uninit();
    let skel = FirstNsSkelBuilder::default()
        .open(&mut storage)
        .context("opening first_ns.bpf.c's object")?
        .load()
        .context("loading first_ns.bpf.c's program")?;
    let mut first = zm_first_ns::default();
    // SAFETY: zm_first_ns is repr(C) plain old data without padding holes.
    unsafe { run_syscall_program(&skel.progs.zm_first_namespaces, &mut first) }?;
    Ok(first)
}

/// Puts `value` in place of the 64-bit immediate `mark` in every program
/// that holds it (see `ZM_BOOT_NSPROXY_MARK` in zonemon.h). Fails if none
/// does: the object and this loader would disagree.
fn set_boot_nsproxy(open: &mut OpenZonemonSkel<'_>, mark: u64, value: u64) -> Result<()> {
    let mut replaced = 0;
    for prog in open.open_object_mut().progs_mut() {
        let mut insns = prog.insns().to_vec();
        let n = replace_imm64(&mut insns, mark, value);
        if n == 0 {
            continue;
        }
        replaced += n;
        // Only immediates change: the instructions keep their number and places, so
        // the relocations libbpf recorded by instruction index at open still apply.
        // SAFETY: the program is open, not loaded; libbpf copies the instructions.
        let rc = unsafe {
            libbpf_sys::bpf_program__set_insns(
                prog.as_libbpf_object().as_ptr(),
                insns.as_mut_ptr(),
                insns.len() as _,
            )
        };
        if rc != 0 {
            bail!(
                "setting the instructions of BPF program {} failed ({})",
                prog.name().to_string_lossy(),
                std::io::Error::from_raw_os_error(-rc)
            );
        }
    }
    if replaced == 0 {
        bail!("no BPF program holds the placeholder {mark:#x} (ZM_BOOT_NSPROXY_MARK): the object was built from another zonemon.h");
    }
    Ok(())
}

/// The opcode of `ld_imm64` (BPF_LD | BPF_IMM | BPF_DW), two instructions long.
const LD_IMM64: u8 = 0x18;

/// Where `insns` load 64-bit constants (`ld_imm64` with source register 0;
/// not a map or other relocated load): each such instruction's index and
/// its constant.
fn imm64_loads(insns: &[libbpf_sys::bpf_insn]) -> Vec<(usize, u64)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < insns.len() {
        if insns[i].code != LD_IMM64 {
            i += 1;
            continue;
        }
        if insns[i].src_reg() == 0 {
            let imm = u64::from(insns[i].imm as u32) | (u64::from(insns[i + 1].imm as u32) << 32);
            found.push((i, imm));
        }
        // The second half of an ld_imm64 is no instruction of its own.
        i += 2;
    }
    found
}

/// Replaces every constant `from` that `insns` load (see [`imm64_loads`])
/// with `to`; how many it replaced.
fn replace_imm64(insns: &mut [libbpf_sys::bpf_insn], from: u64, to: u64) -> usize {
    let sites: Vec<usize> = imm64_loads(insns)
        .into_iter()
        .filter(|&(_, imm)| imm == from)
        .map(|(i, _)| i)
        .collect();
    for &i in &sites {
        insns[i].imm = to as u32 as i32;
        insns[i + 1].imm = (to >> 32) as u32 as i32;
    }
    sites.len()
}

/// Whether the kernel has the `sched_prepare_exec` tracepoint (Linux 6.10+):
/// an exec is then seen at its point of no return (`zm_exec`), else when it
/// is done (`zm_exec_done`). Asked of the kernel's BTF, which every
/// `tp_btf` program needs; if it cannot be read, the load fails and says why.
fn has_prepare_exec() -> bool {
    libbpf_rs::btf::Btf::from_vmlinux().is_ok_and(|btf| {
        btf.type_by_name::<libbpf_rs::btf::BtfType<'_>>("btf_trace_sched_prepare_exec")
            .is_some()
    })
}

/// Runs the kernel side's `zm_seed` program (BPF_PROG_RUN) on `seed`:
/// whether it changed anything.
pub fn run_seed(skel: &ZonemonSkel<'_>, mut seed: zm_seed) -> Result<bool, libbpf_rs::Error> {
    // SAFETY: zm_seed is repr(C) plain old data without padding holes.
    Ok(unsafe { run_syscall_program(&skel.progs.zm_seed, &mut seed) }? == 1)
}

/// Runs a `SEC("syscall")` program (BPF_PROG_RUN) with `ctx` as its context,
/// which the kernel writes back with what the program left in it; returns
/// the program's return value.
///
/// # Safety
/// `T` must be the program's context type, `repr(C)` plain old data without
/// padding holes (its bytes are passed to the kernel and overwritten by it).
unsafe fn run_syscall_program<T>(
    prog: &libbpf_rs::ProgramMut<'_>,
    ctx: &mut T,
) -> Result<u32, libbpf_rs::Error> {
    // SAFETY: the caller promises T is plain old data; the slice covers exactly `ctx`.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut((ctx as *mut T).cast::<u8>(), std::mem::size_of::<T>())
    };
    let input = libbpf_rs::ProgramInput {
        context_in: Some(bytes),
        ..Default::default()
    };
    Ok(prog.test_run(input)?.return_value)
}

/// Writes libbpf's log to a file of its own and returns its path.
fn write_log(log: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("zonemon-bpf-load-{}.log", std::process::id()));
    if let Err(e) = std::fs::write(&path, log) {
        eprintln!("zonemon: could not write {}: {e}", path.display());
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `ld_imm64` of `imm` into r1, with source register `src`.
    fn ld_imm64(imm: u64, src: u8) -> [libbpf_sys::bpf_insn; 2] {
        let mut first = libbpf_sys::bpf_insn {
            code: LD_IMM64,
            imm: imm as u32 as i32,
            ..Default::default()
        };
        first.set_dst_reg(1);
        first.set_src_reg(src);
        let second = libbpf_sys::bpf_insn {
            imm: (imm >> 32) as u32 as i32,
            ..Default::default()
        };
        [first, second]
    }

    /// The 64-bit constants `insns` load.
    fn imm64s(insns: &[libbpf_sys::bpf_insn]) -> Vec<u64> {
        imm64_loads(insns).into_iter().map(|(_, imm)| imm).collect()
    }

    #[test]
    fn only_the_placeholders_constant_loads_are_replaced() {
        const MARK: u64 = 0x7a6d_626f_6f74_6e73;
        let exit = libbpf_sys::bpf_insn {
            code: 0x95,
            ..Default::default()
        };
        let mut insns = Vec::new();
        insns.extend(ld_imm64(MARK, 0));
        insns.extend(ld_imm64(0x1234, 0));
        // A map's address loads with source register 1 (BPF_PSEUDO_MAP_FD): never touched.
        insns.extend(ld_imm64(MARK, 1));
        // The second half of an ld_imm64 is not an instruction of its own, even when it looks like one.
        insns.extend(ld_imm64(u64::from(LD_IMM64) << 32 | 5, 0));
        insns.push(exit);
        insns.extend(ld_imm64(MARK, 0));
        let replaced = replace_imm64(&mut insns, MARK, 0xffff_ffff_82f0_1234);
        assert_eq!(replaced, 2);
        assert_eq!(
            imm64s(&insns),
            [
                0xffff_ffff_82f0_1234,
                0x1234,
                u64::from(LD_IMM64) << 32 | 5,
                0xffff_ffff_82f0_1234
            ]
        );
        // The map's load is untouched.
        assert_eq!((insns[4].src_reg(), insns[4].imm as u32), (1, MARK as u32));
        assert_eq!(insns.len(), 11);
        assert_eq!(insns[8].code, 0x95);
    }

    #[test]
    fn the_kernels_first_namespaces_are_put_in_every_program_that_tells_host_processes() {
        if !zonemon_testkit::require_root("the_kernels_first_namespaces_are_put_in_every_program") {
            return;
        }
        let first = first_namespaces().expect("first_ns.bpf.c runs");
        assert_ne!(
            first.nsproxy, 0,
            "the first task's namespaces were not found"
        );
        // PID 1 of these machines runs in the mount namespace the kernel started with, or
        // zonemon reads its own (see HostMounts::read), which is that one here too.
        let host = HostMounts::read(Path::new("/proc")).expect("host mounts");
        assert_eq!(first.mntns_inum, host.mntns);
        assert_eq!(boot_nsproxy(host.mntns), first.nsproxy);
        assert_eq!(
            boot_nsproxy(host.mntns ^ 1),
            0,
            "another mount namespace's is not kept"
        );

        let mut storage = MaybeUninit::uninit();
        let skel = load(&mut storage, crate::sources::DEFAULT_RING_BYTES).expect("loaded");
        let mark = skel.maps.rodata_data.expect("rodata").boot_nsproxy_mark;
        for prog in skel.object().progs() {
            let imms = imm64s(prog.insns());
            assert!(
                !imms.contains(&mark),
                "{:?} still holds the placeholder",
                prog.name()
            );
            let name = prog.name().to_string_lossy().into_owned();
            if ["zm_fork", "zm_exec", "zm_exit", "zm_cgroup"].contains(&name.as_str()) {
                assert!(
                    imms.contains(&first.nsproxy),
                    "{name} does not hold the address"
                );
            }
        }
    }

    #[test]
    fn kernels_without_sched_prepare_exec_get_the_exec_program_of_sched_process_exec() {
        if !zonemon_testkit::require_root("kernels_without_sched_prepare_exec") {
            return;
        }
        assert!(has_prepare_exec(), "Linux 6.10+ has sched_prepare_exec");
        // As on a kernel before 6.10: the verifier takes the other exec program, and it attaches.
        let mut storage = MaybeUninit::uninit();
        let mut skel = open_and_load(&mut storage, crate::sources::DEFAULT_RING_BYTES, false)
            .expect("loaded with zm_exec_done");
        assert!(!skel.progs.zm_exec.autoload() && skel.progs.zm_exec_done.autoload());
        skel.attach().expect("attached");
        assert!(skel.links.zm_exec_done.is_some() && skel.links.zm_exec.is_none());
    }
}
