//! Making zones with `unshare(1)`.

use std::process::{Command, Stdio};

/// `unshare --uts sh -c 'hostname "$1" && exec unshare --pid --fork --kill-child sh -c "$2"' sh NAME SCRIPT`:
/// a command that boots a zone named `name` (its own UTS namespace, hostname
/// set before the zone's init exists) whose init runs `sh -c script`; stdin,
/// stdout and stderr go to /dev/null. Name and script are passed as
/// arguments, never spliced into shell text.
pub fn zone_cmd(name: &str, script: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--uts",
        "sh",
        "-c",
        "hostname \"$1\" && exec unshare --pid --fork --kill-child sh -c \"$2\"",
        "sh",
        name,
        script,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}
