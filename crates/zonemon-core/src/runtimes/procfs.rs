//! Parsers for the few `/proc/<pid>` files the resolvers read, and a
//! command-line option reader. Pure functions: any input, no panic,
//! bounded output.

/// Most bytes of a `/proc/<pid>/cmdline` read.
pub const MAX_CMDLINE: usize = 32 * 1024;

/// Most arguments kept from a command line.
pub const MAX_ARGS: usize = 256;

/// Most cgroup lines kept from `/proc/<pid>/cgroup` (one per hierarchy).
pub const MAX_CGROUP_LINES: usize = 64;

/// Longest cgroup path kept, in bytes.
pub const MAX_CGROUP_PATH: usize = 4096;

/// Longest `/proc/<pid>/stat` read.
pub const MAX_STAT: usize = 8 * 1024;

/// The parent PID (field 4) and start time in clock ticks (field 22) from
/// `/proc/<pid>/stat`, fields counted as [`crate::procscan::stat_field`] does.
pub fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let ppid = crate::procscan::stat_field(stat, 4)?.parse().ok()?;
    let start = crate::procscan::stat_field(stat, 22)?.parse().ok()?;
    Some((ppid, start))
}

/// The arguments of a NUL-separated command line (lossy UTF-8, at most [`MAX_ARGS`]).
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .take(MAX_ARGS)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The distinct cgroup paths of `/proc/<pid>/cgroup` content, in file order
/// (at most [`MAX_CGROUP_LINES`], each at most [`MAX_CGROUP_PATH`] bytes).
pub fn parse_cgroup_paths(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in content.lines().take(MAX_CGROUP_LINES) {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if !path.starts_with('/') || path.len() > MAX_CGROUP_PATH {
            continue;
        }
        if !out.iter().any(|p| p == path) {
            out.push(path.to_string());
        }
    }
    out
}

/// The basename of a command line's program (`/usr/bin/conmon` → `conmon`).
pub fn program(args: &[String]) -> &str {
    args.first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("")
}

/// Whether the program of `args` ([`program`]) is one of `progs` (an entry
/// ending in `*` matches a prefix).
pub fn program_is_one_of(args: &[String], progs: &[&str]) -> bool {
    let p = program(args);
    progs.iter().any(|want| match want.strip_suffix('*') {
        Some(prefix) => p.starts_with(prefix),
        None => p == *want,
    })
}

/// The value of an option in `args`: `-x v` or `-x=v` for each of `names`
/// (give them with their dashes, e.g. `["-M", "--machine"]`). The last
/// occurrence wins, as with most option parsers. Only `names` are known to
/// take a value: the value of another option that looks like one of
/// `names` is taken for it.
pub fn option<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut found = None;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            break;
        }
        if names.contains(&a) {
            if let Some(v) = args.get(i + 1) {
                found = Some(v.as_str());
            }
            i += 2;
            continue;
        }
        if let Some((k, v)) = a.split_once('=') {
            if names.contains(&k) {
                found = Some(v);
            }
        }
        i += 1;
    }
    found
}

/// Whether `args` holds the flag `name` (exactly).
pub fn has_arg(args: &[String], name: &str) -> bool {
    args.iter().skip(1).any(|a| a == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtimes::testutil::{mutated_any, Bytes, CASES};
    use proptest::prelude::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn stat_fields() {
        let stat = "2392 (sleep) S 1 2392 2392 0 -1 4194560 113 0 0 0 0 0 0 0 20 0 1 0 71762 1085440 1 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((1, 71762)));
        let tricky = "5 (a) b) c) R 77 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        assert_eq!(parse_stat(tricky), Some((77, 99)));
        assert_eq!(parse_stat("5 (x) S"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn cmdlines() {
        assert_eq!(
            parse_cmdline(b"runc\0run\0-d\0aap\0"),
            ["runc", "run", "-d", "aap"]
        );
        assert_eq!(
            parse_cmdline(b"[lxc monitor] /var/lib/lxc aap\0\0\0"),
            ["[lxc monitor] /var/lib/lxc aap", "", ""]
        );
        assert!(parse_cmdline(b"").is_empty());
        assert!(parse_cmdline(b"\0").len() <= 1);
        assert_eq!(parse_cmdline(&b"a\0".repeat(10_000)).len(), MAX_ARGS);
    }

    #[test]
    fn cgroup_paths() {
        let c = "9:name=systemd:/aap\n8:pids:/aap\n4:memory:/x/aap\n0::/aap\nbad\n:x:/y\n3:cpu:relative\n";
        assert_eq!(parse_cgroup_paths(c), ["/aap", "/x/aap"]);
        assert!(parse_cgroup_paths("").is_empty());
    }

    #[test]
    fn options() {
        let a = argv(&[
            "nspawn",
            "-D",
            "/r/x",
            "-M",
            "aap",
            "--machine=noot",
            "--",
            "-M",
            "mies",
        ]);
        assert_eq!(option(&a, &["-M", "--machine"]), Some("noot"));
        assert_eq!(option(&a, &["-D", "--directory"]), Some("/r/x"));
        assert_eq!(option(&argv(&["x", "-M"]), &["-M"]), None);
        let v = argv(&["x", "-n", "-M", "y"]);
        assert_eq!(option(&v, &["-n"]), Some("-M"), "a value is taken as given");
        assert_eq!(
            option(&v, &["-M"]),
            Some("y"),
            "only the names asked for are known to take values"
        );
        assert!(has_arg(&v, "-n"));
        assert_eq!(program(&argv(&["/usr/bin/conmon", "-c"])), "conmon");
        assert_eq!(program(&[]), "");
        let shim = argv(&["/usr/bin/containerd-shim-runc-v2", "-id", "x"]);
        assert!(program_is_one_of(&shim, &["conmon", "containerd-shim*"]));
        assert!(!program_is_one_of(&shim, &["containerd"]));
        assert!(!program_is_one_of(&[], &["conmon"]));
    }

    /// Real `/proc` files for the parsers to be fed mutations of.
    const SEEDS: [&[u8]; 4] = [
        b"2392 (sleep) S 1 2392 2392 0 -1 4194560 113 0 0 0 0 0 0 0 20 0 1 0 71762 1085440",
        b"Name:\tsh\nNSpid:\t2392\t1\n",
        b"9:name=systemd:/aap\n0::/docker/abc\n",
        b"conmon\0-c\0abc\0-n\0aap\0",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parsers_survive_random_input(
            input in prop_oneof![
                1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Bytes),
                4 => mutated_any(&SEEDS),
            ]
        ) {
            let s = String::from_utf8_lossy(&input);
            let _ = parse_stat(&s);
            let paths = parse_cgroup_paths(&s);
            prop_assert!(paths.len() <= MAX_CGROUP_LINES);
            prop_assert!(paths.iter().all(|p| p.len() <= MAX_CGROUP_PATH));
            let args = parse_cmdline(&input);
            prop_assert!(args.len() <= MAX_ARGS);
            let _ = option(&args, &["-n", "--name"]);
            let _ = program(&args);
        }
    }
}
