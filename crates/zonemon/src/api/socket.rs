//! The API's Unix socket: made so that the file's permissions are the access
//! control (mode 0660, group `zonemon` when that group exists), never two
//! daemons on one path, and no stale file left behind.

use std::ffi::CString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The longest socket path the kernel takes (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A listening socket at `path`, with the lock that makes it ours; the file
/// is removed when this is dropped, if it is still the one we made.
#[derive(Debug)]
pub struct BoundSocket {
    /// The listening socket.
    pub listener: UnixListener,
    /// Where it is.
    pub path: PathBuf,
    /// (device, inode) of the file we bound, to remove only our own.
    id: (u64, u64),
    /// `<path>.lock`, held (flock) while we serve.
    _lock: File,
}

/// Binds the socket at `path`: creates its directory (0755) if missing,
/// refuses when another daemon holds the path or `path` is something other
/// than a socket, removes a stale socket, and makes the new one mode 0660
/// owned by `group` when that group exists (else by our own group).
///
/// The socket is bound under a temporary name, given its mode and group, and
/// only then renamed to `path`: no instant where it is more open than that.
pub fn bind(path: &Path, group: Option<&str>) -> Result<BoundSocket> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "socket path {} is longer than {MAX_SOCKET_PATH} bytes",
            path.display()
        );
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .with_context(|| format!("socket path {} names no file", path.display()))?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("creating the socket's directory {}", dir.display()))?;
    let lock = take_lock(path)?;
    remove_stale(path)?;

    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).with_context(|| format!("binding {}", tmp.display()))?;
    let made = (|| -> Result<()> {
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o660))
            .context("setting the socket's mode to 0660")?;
        if let Some(gid) = group.and_then(group_id) {
            chown_group(&tmp, gid)
                .with_context(|| format!("giving the socket to group {}", group.unwrap_or("")))?;
        }
        fs::rename(&tmp, path).with_context(|| format!("moving the socket to {}", path.display()))
    })();
    if let Err(e) = made {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let meta = fs::symlink_metadata(path)?;
    Ok(BoundSocket {
        listener,
        path: path.to_path_buf(),
        id: (meta.dev(), meta.ino()),
        _lock: lock,
    })
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Takes `<path>.lock` (flock, exclusive, not waiting): held by another daemon → refused.
fn take_lock(path: &Path) -> Result<File> {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == ErrorKind::WouldBlock {
            bail!(
                "another zonemon daemon serves {} (it holds {})",
                path.display(),
                lock_path.display()
            );
        }
        return Err(e).with_context(|| format!("locking {}", lock_path.display()));
    }
    Ok(lock)
}

/// Removes a socket nobody answers on; refuses a live one or a non-socket.
fn remove_stale(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("looking at {}", path.display())),
        Ok(m) => m,
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket: not touching it",
            path.display()
        );
    }
    match UnixStream::connect(path) {
        Ok(_) => bail!("another daemon is listening on {}", path.display()),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale socket");
            fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("checking {} for a live daemon", path.display())),
    }
}

/// The id of group `name`, if it exists.
pub fn group_id(name: &str) -> Option<libc::gid_t> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: zeroed plain C struct, filled by getgrnam_r.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: valid pointers; buf outlives the call and its length is passed.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(grp.gr_gid)
}

/// Gives `path` to group `gid` (the owner stays).
fn chown_group(path: &Path, gid: libc::gid_t) -> io::Result<()> {
    std::os::unix::fs::lchown(path, None, Some(gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zonemon-sock-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn binds_0660_in_a_new_directory_and_cleans_up() {
        let dir = tmpdir("bind");
        let path = dir.join("run/zonemon.sock");
        let s = bind(&path, Some("no-such-group-zonemon-test")).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o660);
        assert!(UnixStream::connect(&path).is_ok());
        drop(s);
        assert!(!path.exists(), "the socket is removed at the end");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_live_daemon_and_replaces_a_stale_socket() {
        let dir = tmpdir("stale");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.sock");
        let first = bind(&path, None).unwrap();
        let e = bind(&path, None).unwrap_err().to_string();
        assert!(e.contains("another zonemon daemon"), "{e}");
        drop(first);
        // A stale socket (nobody listens) from a daemon that died without cleaning up.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let second = bind(&path, None).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        // A live listener that is not ours (no lock) is refused as well.
        drop(second);
        let other = UnixListener::bind(&path).unwrap();
        let e = bind(&path, None).unwrap_err().to_string();
        assert!(e.contains("another daemon is listening"), "{e}");
        drop(other);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_removes_what_is_not_a_socket() {
        let dir = tmpdir("file");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.sock");
        fs::write(&path, "precious").unwrap();
        let e = bind(&path, None).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn groups_are_looked_up() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-zonemon-test"), None);
        assert_eq!(group_id("nul\0byte"), None);
    }
}
