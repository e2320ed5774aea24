//! Loading and attaching zonemon's BPF programs, with errors that say what to do.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{OpenObject, PrintLevel};
use zonemon_core::procscan::HostMounts;

use super::skel::types::{zm_seed, zm_seed_op};
use super::skel::{ZonemonSkel, ZonemonSkelBuilder};

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
    learn_boot_nsproxy(&skel);
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
    match HostMounts::read(Path::new("/proc")) {
        Ok(host) => {
            let rodata = open
                .maps
                .rodata_data
                .as_deref_mut()
                .context("the BPF object has no read-only data section")?;
            rodata.host_mntns = host.mntns;
            rodata.host_root_dev = host.kernel_root_dev();
            rodata.host_root_ino = host.root_ino;
        }
        Err(e) => tracing::warn!(
            "cannot read the host's mount namespace and root directory from /proc/1 ({e}): \
             containers sharing the host's PID namespace (--pid=host) are not watched"
        ),
    }
    Ok(open.load()?)
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
    let ctx = unsafe {
        std::slice::from_raw_parts_mut(
            (&mut seed as *mut zm_seed).cast::<u8>(),
            std::mem::size_of::<zm_seed>(),
        )
    };
    let input = libbpf_rs::ProgramInput {
        context_in: Some(ctx),
        ..Default::default()
    };
    Ok(skel.progs.zm_seed.test_run(input)?.return_value == 1)
}

/// Has the kernel side learn the namespaces the kernel started with, so that
/// the tasks holding them (plain host processes, nearly all) cost one test;
/// without it (the host's mount namespace is another one, or the run fails)
/// they are told apart as before, only slower.
fn learn_boot_nsproxy(skel: &ZonemonSkel<'_>) {
    let seed = zm_seed {
        op: zm_seed_op::ZM_SEED_BOOT_NSPROXY.0,
        tgid: 0,
        mntns_inum: 0,
        _pad: 0,
        start_ns: 0,
    };
    match run_seed(skel, seed) {
        Ok(true) => {}
        Ok(false) => tracing::debug!(
            "the kernel's first namespaces do not hold the host's mount namespace: \
             host processes are told apart by their PID namespace's depth"
        ),
        Err(e) => tracing::debug!("cannot learn the kernel's first namespaces ({e})"),
    }
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

    #[test]
    fn the_kernels_first_namespaces_are_learnt_on_a_host_in_its_first_mount_namespace() {
        if !zonemon_testkit::require_root("the_kernels_first_namespaces_are_learnt") {
            return;
        }
        // PID 1 of these machines runs in the mount namespace the kernel started with.
        let mut storage = MaybeUninit::uninit();
        let skel = load(&mut storage, crate::sources::DEFAULT_RING_BYTES).expect("loaded");
        let bss = skel.maps.bss_data.as_deref().expect(".bss mapped");
        assert_ne!(
            bss.boot_nsproxy, 0,
            "the kernel side did not keep the first namespaces: every host process takes the slow test"
        );
        // Run again, it finds the same set.
        let before = bss.boot_nsproxy;
        learn_boot_nsproxy(&skel);
        let bss = skel.maps.bss_data.as_deref().expect(".bss mapped");
        assert_eq!(bss.boot_nsproxy, before);
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
