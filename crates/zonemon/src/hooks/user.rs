//! The account a hook runs as (`user = "NAME"` in its configuration).

use std::ffi::CString;

use anyhow::{bail, Result};

/// A user's ids, resolved when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name as configured.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

impl Account {
    /// The account called `name` in the user database (a number is a uid whose
    /// group is its primary one, or the same number when the database lacks it).
    pub fn lookup(name: &str) -> Result<Account> {
        if let Ok(uid) = name.parse::<u32>() {
            let gid = passwd(|buf, pw, out| {
                // SAFETY: valid buffers for the call's duration.
                unsafe { libc::getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), out) }
            })
            .map(|(_, gid)| gid)
            .unwrap_or(uid);
            return Ok(Account {
                name: name.to_string(),
                uid,
                gid,
            });
        }
        let Ok(c) = CString::new(name) else {
            bail!("user `{}` is not a valid name", name.escape_debug());
        };
        match passwd(|buf, pw, out| {
            // SAFETY: valid buffers and a NUL-terminated name for the call's duration.
            unsafe { libc::getpwnam_r(c.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), out) }
        }) {
            Some((uid, gid)) => Ok(Account {
                name: name.to_string(),
                uid,
                gid,
            }),
            None => bail!(
                "no user `{}` on this host (give an existing user name or a uid)",
                name.escape_debug()
            ),
        }
    }
}

/// Runs a `getpw*_r` call; the (uid, gid) it found.
fn passwd(
    call: impl Fn(&mut [libc::c_char], *mut libc::passwd, *mut *mut libc::passwd) -> libc::c_int,
) -> Option<(u32, u32)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; zeroed is a valid value to be overwritten.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let rc = call(&mut buf, &mut pw, &mut out);
    if rc != 0 || out.is_null() {
        return None;
    }
    Some((pw.pw_uid, pw.pw_gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_users_by_name_and_number() {
        let root = Account::lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(Account::lookup("0").unwrap().uid, 0);
        let e = Account::lookup("no-such-user-zonemon")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no user `no-such-user-zonemon`"), "{e}");
        assert!(Account::lookup("a\0b").is_err());
    }
}
