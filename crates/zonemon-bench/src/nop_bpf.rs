//! Empty BPF programs (`c/nop.bpf.c`) attached to the scheduler tracepoints
//! zonemon's programs use, in the benchmark's own process: the floor that
//! `kernel.bpf_stats_enabled` measures for a program that does nothing,
//! next to zonemon's figures in the same cycles.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use libbpf_rs::{Link, Object, ObjectBuilder};

/// The empty programs, attached until dropped.
pub struct NopPrograms {
    _links: Vec<Link>,
    _object: Object,
}

impl NopPrograms {
    /// The file descriptors of the programs and their links in this process
    /// (their `/proc/self/fdinfo` entries: a program's says its run time, its
    /// link's the tracepoint).
    pub fn fds(&self) -> Vec<RawFd> {
        let progs = self._object.progs().map(|p| p.as_fd().as_raw_fd());
        let links = self._links.iter().map(|l| l.as_fd().as_raw_fd());
        progs.chain(links).collect()
    }

    /// Compiles `c/nop.bpf.c` into `dir` with clang, loads it and attaches every program.
    pub fn attach(dir: &Path) -> Result<NopPrograms> {
        let src = dir.join("nop.bpf.c");
        let obj = dir.join("nop.bpf.o");
        std::fs::write(&src, include_str!("../c/nop.bpf.c"))
            .with_context(|| format!("writing {}", src.display()))?;
        let out = Command::new("clang")
            .args(["-O2", "-target", "bpf", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .output()
            .context("running clang (install clang: apt-get install clang)")?;
        if !out.status.success() {
            bail!(
                "clang {} failed: {}",
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let object = ObjectBuilder::default()
            .open_file(&obj)
            .with_context(|| format!("opening {}", obj.display()))?
            .load()
            .context("loading the empty BPF programs")?;
        let links = object
            .progs_mut()
            .map(|p| {
                p.attach()
                    .with_context(|| format!("attaching {:?}", p.name()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(NopPrograms {
            _links: links,
            _object: object,
        })
    }
}
