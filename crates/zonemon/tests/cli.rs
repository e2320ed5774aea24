//! The command line's help and errors, as a user meets them.

mod common;

use std::process::Command;

use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ZONEMON)
        .args(args)
        .output()
        .expect("running zonemon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_subcommand_has_help() {
    for (args, words) in [
        (
            vec!["--help"],
            vec!["watch", "list", "--json", "--all", "--timestamps"],
        ),
        (
            vec!["watch", "--help"],
            vec![
                "--json",
                "--all",
                "--timestamps",
                "--ring-size",
                "SIGINT",
                "--initial",
                "--source",
                "proc-connector",
                "--interval",
                "--stats",
            ],
        ),
        (
            vec!["list", "--help"],
            vec!["-p", "zone_id:name:state:root:container_id:runtime:pidns"],
        ),
        (vec!["help", "list"], vec!["--parseable"]),
    ] {
        let (code, out, _) = run(&args);
        assert_eq!(code, 0, "{args:?}");
        for w in words {
            assert!(out.contains(w), "{args:?} help lacks {w}:\n{out}");
        }
    }
}

#[test]
fn bad_input_names_the_flag() {
    let (code, _, err) = run(&["--ring-size", "1000"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--ring-size") && err.contains("power of two"),
        "{err}"
    );
    let (code, _, err) = run(&["watch", "--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("--frobnicate"), "{err}");
    let (code, _, err) = run(&["list", "--json"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn without_privileges_watch_says_what_to_do() {
    if !require_root("without_privileges_watch_says_what_to_do") {
        return;
    }
    // Drop to nobody with no capabilities, as an unprivileged user would run it, from a
    // copy nobody can reach (the checkout may live under a private home directory).
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("zonemon-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("zonemon");
    std::fs::copy(ZONEMON, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(&bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running setpriv");
    // It must stop at once with an error, not watch half-blind.
    wait_timeout(&mut child, std::time::Duration::from_secs(20));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs root") && err.contains("CAP_BPF") && err.contains("sudo"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
