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

#[test]
fn completions_are_valid_scripts_for_each_shell() {
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let (code, script, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in ["watch", "list", "completions"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        let json_flag = if shell == "fish" { "-l json" } else { "--json" };
        assert!(
            script.contains(json_flag),
            "{shell} completions lack --json"
        );
        // The shell itself must accept the script (syntax check only).
        let file = std::env::temp_dir().join(format!("zonemon-{}.{shell}", std::process::id()));
        std::fs::write(&file, &script).unwrap();
        let check = Command::new(checker)
            .arg("-n")
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("running {checker} (./dev installs it): {e}"));
        let _ = std::fs::remove_file(&file);
        assert!(
            check.status.success(),
            "{checker} -n rejects the script: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bash") && err.contains("zsh") && err.contains("fish"),
        "{err}"
    );
}

#[test]
fn man_pages_render_for_zonemon_and_each_subcommand() {
    let dir = std::env::temp_dir().join(format!("zonemon-man-{}", std::process::id()));
    let (code, _, err) = run(&["manpages", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for (page, words) in [
        ("zonemon.1", vec!["zonemon", "--json", "watch", "list"]),
        ("zonemon-watch.1", vec!["--ring-size", "--source"]),
        ("zonemon-list.1", vec!["--parseable"]),
    ] {
        let path = dir.join(page);
        let out = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap_or_else(|e| panic!("running man (./dev installs man-db): {e}"));
        // Drop the overstrike that makes bold ("X\bX") to read the plain text.
        let mut text = String::new();
        for c in String::from_utf8_lossy(&out.stdout).chars() {
            if c == '\u{8}' {
                text.pop();
            } else {
                text.push(c);
            }
        }
        assert!(out.status.success(), "man -l {page}");
        for w in words {
            assert!(text.contains(w), "{page} lacks {w}:\n{text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
