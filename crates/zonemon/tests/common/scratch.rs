//! A scratch directory with a busybox root filesystem, for the tests that
//! start containers or change a zone's root.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Runs `cmd` and panics with its output unless it succeeds.
fn succeed(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch directory with a busybox-static root filesystem, removed when dropped.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A fresh one under the temporary directory, named after `prefix`.
    pub fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(prefix.trim_end_matches('-'));
        let _ = fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in [
            "bin", "proc", "sys", "dev", "tmp", "etc", "usr", "root", "run",
        ] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("busybox (Debian package busybox-static)");
        fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "sleep", "hostname", "true", "cat", "ls", "init", "tail",
        ] {
            symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        fs::write(rootfs.join("etc/hostname"), "zmt\n").unwrap();
        fs::write(rootfs.join("etc/os-release"), "ID=busybox\nNAME=zmt\n").unwrap();
        Scratch { dir }
    }

    /// The busybox root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `rel` inside the scratch directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A tar of the rootfs, for `docker import` and `podman import`.
    pub fn tar(&self) -> PathBuf {
        let tar = self.path("rootfs.tar");
        succeed(
            Command::new("tar")
                .arg("-C")
                .arg(self.rootfs())
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        tar
    }

    /// An OCI bundle running `sh -c script` with hostname `hostname`, from `runc spec`.
    pub fn bundle(&self, hostname: &str, script: &str) -> PathBuf {
        let bundle = self.path("bundle");
        fs::create_dir_all(&bundle).unwrap();
        let rootfs = bundle.join("rootfs");
        if !rootfs.exists() {
            symlink(self.rootfs(), &rootfs).unwrap();
        }
        succeed(Command::new("runc").arg("spec").current_dir(&bundle));
        let path = bundle.join("config.json");
        let mut spec: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        spec["process"]["terminal"] = Value::Bool(false);
        spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
        spec["hostname"] = Value::String(hostname.into());
        spec["root"]["path"] = Value::String(self.rootfs().to_string_lossy().into_owned());
        fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        bundle
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
