//! Whether a privileged test may run.

/// True when the environment says `CI=true`: there, a test that cannot run
/// must fail, never skip silently.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether `test` may run: true as root. Without root it panics under
/// `CI=true` (privileged tests must never skip silently there) and otherwise
/// says on stderr that it skips. For tests that load eBPF programs and make
/// PID namespaces; see [`require_root_for`] to give another reason.
pub fn require_root(test: &str) -> bool {
    require_root_for(test, "it loads eBPF programs and makes PID namespaces")
}

/// As [`require_root`], with `reason` (what the test needs root for) in the
/// message under `CI=true`.
pub fn require_root_for(test: &str, reason: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if in_ci() {
        panic!("{test} needs root ({reason}) and CI=true forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs root");
    false
}

/// Whether `test`, which runs the program `prog` (found on `PATH`), may run:
/// as [`require_root_for`] with `reason`, and `prog` installed. Without it the
/// test panics under `CI=true` (saying `./dev` installs it) and otherwise
/// says on stderr that it skips.
pub fn require_root_and_program(test: &str, reason: &str, prog: &str) -> bool {
    if !require_root_for(test, reason) {
        return false;
    }
    if crate::which(prog).is_none() {
        assert!(
            !in_ci(),
            "{test} needs {prog} (apt-get install {prog}; ./dev installs it) and CI=true forbids skipping"
        );
        eprintln!("SKIPPED {test}: no {prog}");
        return false;
    }
    true
}
