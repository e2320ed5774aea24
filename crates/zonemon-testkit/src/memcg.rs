//! A memory cgroup with a small limit, for zones the OOM killer should take.

use std::path::{Path, PathBuf};

/// A command that grows until the OOM killer takes it: `tail /dev/zero` keeps
/// everything it reads, and /dev/zero has no newline.
pub const MEMORY_HOG: &str = "tail /dev/zero";

/// A memory cgroup of the caller's own with a small limit, removed when dropped.
pub struct MemCg {
    path: PathBuf,
    /// Whether it is cgroup v2's (else v1's memory hierarchy).
    pub v2: bool,
}

impl MemCg {
    /// A cgroup `name` limited to `limit` bytes (no swap): in cgroup v1's memory hierarchy
    /// where the host mounts it, else in cgroup v2's; `None` when the host has neither.
    pub fn new(name: &str, limit: u64) -> Option<MemCg> {
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (parent, v2) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.to_path_buf(), false)
        } else {
            let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
                .into_iter()
                .map(Path::new)
                .find(|r| {
                    std::fs::read_to_string(r.join("cgroup.subtree_control"))
                        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
                })?;
            (root.to_path_buf(), true)
        };
        let path = parent.join(name);
        std::fs::create_dir(&path).expect("making a memory cgroup");
        let cg = MemCg { path, v2 };
        let limit = limit.to_string();
        let limit = limit.as_str();
        if v2 {
            cg.set("memory.max", limit);
            cg.set("memory.swap.max", "0");
        } else {
            cg.set("memory.limit_in_bytes", limit);
            if cg.path.join("memory.memsw.limit_in_bytes").exists() {
                cg.set("memory.memsw.limit_in_bytes", limit);
            }
        }
        Some(cg)
    }

    /// Writes `value` to the cgroup's control file `file`; panics on failure.
    pub fn set(&self, file: &str, value: &str) {
        std::fs::write(self.path.join(file), value).unwrap_or_else(|e| {
            panic!("writing {value} to {}: {e}", self.path.join(file).display())
        });
    }

    /// A zone script that moves the zone's init into this cgroup, then runs `script`.
    pub fn enter(&self, script: &str) -> String {
        format!("echo $$ > {}/cgroup.procs && {script}", self.path.display())
    }
}

impl Drop for MemCg {
    fn drop(&mut self) {
        // The zones are gone by now; a straggler is given a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
