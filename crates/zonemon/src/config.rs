//! The daemon's config file, `/etc/zonemon/zonemon.toml` (TOML).
//!
//! Every `zonemon daemon` flag has a key, its name with `_` for `-`
//! (`--retain-size` is `retain_size`), taking the same values; a flag given
//! on the command line overrides the file. Hooks are `[[hook]]` tables (see
//! [`crate::hooks::HookSpec`]). An unknown key or a bad value is an error
//! naming the key and its line. SIGHUP re-reads the file: its hooks and
//! their filters take effect at once, the other keys at the next start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::hooks::HookSpec;
use crate::sources::SourceKind;
use crate::units;
use crate::watch::Priority;

/// Where the daemon looks for its config file when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/zonemon/zonemon.toml";

/// The file's keys; each is `None` (or empty) when the file does not set it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `journal = "/var/lib/zonemon/journal.db"`.
    pub journal: Option<PathBuf>,
    /// `socket = "/run/zonemon/zonemon.sock"`.
    pub socket: Option<PathBuf>,
    /// `retain = "30d"`.
    #[serde(default, deserialize_with = "span")]
    pub retain: Option<Duration>,
    /// `retain_size = "1GiB"`.
    #[serde(default, deserialize_with = "size")]
    pub retain_size: Option<u64>,
    /// `priority = "realtime"` (`normal`, `high`, `realtime`).
    #[serde(default, deserialize_with = "priority")]
    pub priority: Option<Priority>,
    /// `ring_size = 2097152`.
    #[serde(default, deserialize_with = "ring_size")]
    pub ring_size: Option<u32>,
    /// `source = "auto"` (`auto`, `ebpf`, `proc-connector`, `poll`).
    #[serde(default, deserialize_with = "source")]
    pub source: Option<SourceKind>,
    /// `interval = "1s"`.
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Duration>,
    /// `metrics = "127.0.0.1:9750"`, or `"off"`.
    #[serde(default, deserialize_with = "listen")]
    pub metrics: Option<Option<SocketAddr>>,
    /// `hook_concurrency = 4`: hook runs at once.
    #[serde(default, deserialize_with = "at_least_one")]
    pub hook_concurrency: Option<usize>,
    /// `hook_queue = 1024`: hook runs waiting, beyond which new ones are dropped.
    #[serde(default, deserialize_with = "at_least_one")]
    pub hook_queue: Option<usize>,
    /// `[[hook]]` tables.
    #[serde(default)]
    pub hook: Vec<HookSpec>,
    /// `publish = "nats://127.0.0.1:4222"`: the fleet's NATS servers (README: "Fleet"),
    /// checked with the flags (an error never repeats a URL: it may hold a password).
    pub publish: Option<String>,
    /// `host_id = "web-1"`.
    #[serde(default, deserialize_with = "host_id")]
    pub host_id: Option<String>,
    /// `stream = "ZONEMON"`.
    #[serde(default, deserialize_with = "stream")]
    pub stream: Option<String>,
    /// `stream_replicas = 1`.
    pub stream_replicas: Option<u8>,
    /// `stream_max_age = "7d"`.
    #[serde(default, deserialize_with = "span")]
    pub stream_max_age: Option<Duration>,
    /// `stream_duplicate_window = "10m"`.
    #[serde(default, deserialize_with = "span")]
    pub stream_duplicate_window: Option<Duration>,
    /// `nats_creds = "/etc/zonemon/nats.creds"`.
    pub nats_creds: Option<PathBuf>,
    /// `nats_nkey = "/etc/zonemon/nats.nk"`.
    pub nats_nkey: Option<PathBuf>,
    /// `nats_user = "zonemon"`.
    pub nats_user: Option<String>,
    /// `nats_password_file = "/etc/zonemon/nats.password"`.
    pub nats_password_file: Option<PathBuf>,
    /// `nats_tls_ca = "/etc/zonemon/nats-ca.pem"`.
    pub nats_tls_ca: Option<PathBuf>,
    /// `nats_tls_cert = "/etc/zonemon/nats-cert.pem"`.
    pub nats_tls_cert: Option<PathBuf>,
    /// `nats_tls_key = "/etc/zonemon/nats-key.pem"`.
    pub nats_tls_key: Option<PathBuf>,
}

/// Reads the config file at `path`. A missing file is an empty configuration
/// unless `required` (a path the user named).
pub fn load(path: &Path, required: bool) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(ConfigFile::default())
        }
        Err(e) => {
            return Err(e).with_context(|| format!("reading the config file {}", path.display()))
        }
    };
    parse(&text).with_context(|| format!("in the config file {}", path.display()))
}

/// Parses a config file's text.
pub fn parse(text: &str) -> Result<ConfigFile> {
    // toml's message names the key and shows its line.
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
}

/// One `--hook` value: a hook table inline, as in the file
/// (`{ run = ["/usr/local/bin/page", "--urgent"], filter = ["exit=nonzero"] }`).
pub fn parse_hook(text: &str) -> Result<HookSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct One {
        hook: HookSpec,
    }
    toml::from_str::<One>(&format!("hook = {text}"))
        .map(|o| o.hook)
        .map_err(|e| e.message().to_string())
}

/// A string key's value read with `parse`.
fn parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map(Some).map_err(D::Error::custom)
}

fn span<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    parsed(d, units::parse_span)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    parsed(d, units::parse_size)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    parsed(d, units::parse_duration)
}

fn priority<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Priority>, D::Error> {
    parsed(d, |s| {
        crate::cli::priority(s).ok_or_else(|| {
            format!(
                "unknown priority `{}` (normal, high, realtime)",
                s.escape_debug()
            )
        })
    })
}

fn source<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SourceKind>, D::Error> {
    parsed(d, |s| {
        crate::cli::source(s).ok_or_else(|| {
            format!(
                "unknown source `{}` (auto, ebpf, proc-connector, poll)",
                s.escape_debug()
            )
        })
    })
}

fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<SocketAddr>>, D::Error> {
    parsed(d, crate::cli::parse_listen)
}

fn host_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    parsed(d, crate::fleet::names::check_host_id)
}

fn stream<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    parsed(d, crate::fleet::args::stream_name)
}

fn ring_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u64::deserialize(d)?;
    crate::cli::parse_ring_size(&n.to_string())
        .map(Some)
        .map_err(D::Error::custom)
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(D::Error::custom("must be at least 1")),
        n => Ok(Some(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn every_key_reads() {
        let c = parse(
            r#"
journal = "/srv/j.db"
socket = "/run/z.sock"
retain = "7d"
retain_size = "10MiB"
priority = "realtime"
ring_size = 8192
source = "proc-connector"
interval = "250ms"
metrics = "off"
hook_concurrency = 2
hook_queue = 10

[[hook]]
name = "page"
run = ["/bin/true", "--urgent", "$(touch /tmp/x)"]
filter = ["event=shutdown", "exit=nonzero"]
user = "root"
timeout = "5s"

[[hook]]
run = ["/bin/echo"]
"#,
        )
        .unwrap();
        assert_eq!(c.journal.as_deref(), Some(Path::new("/srv/j.db")));
        assert_eq!(c.retain, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.retain_size, Some(10 << 20));
        assert_eq!(c.priority, Some(Priority::Realtime));
        assert_eq!(c.ring_size, Some(8192));
        assert_eq!(c.source, Some(SourceKind::ProcConnector));
        assert_eq!(c.interval, Some(Duration::from_millis(250)));
        assert_eq!(c.metrics, Some(None));
        assert_eq!((c.hook_concurrency, c.hook_queue), (Some(2), Some(10)));
        assert_eq!(c.hook.len(), 2);
        assert_eq!(c.hook[0].run[2], "$(touch /tmp/x)");
        assert_eq!(c.hook[0].timeout, Duration::from_secs(5));
        assert_eq!(c.hook[0].user.as_ref().unwrap().uid, 0);
        assert_eq!(c.hook[1].name(), "echo");
        assert_eq!(c.hook[1].timeout, crate::hooks::DEFAULT_TIMEOUT);
        assert!(parse("").unwrap().hook.is_empty());
    }

    #[test]
    fn errors_name_the_key_and_its_line() {
        let e = error("journal = \"/j\"\ncolour = \"red\"\n");
        assert!(e.contains("line 2") && e.contains("colour"), "{e}");
        let e = error("\n\nretain = \"3 parsecs\"\n");
        assert!(e.contains("line 3") && e.contains("parsecs"), "{e}");
        let e = error("ring_size = 5000\n");
        assert!(e.contains("line 1") && e.contains("power of two"), "{e}");
        let e = error("[[hook]]\nrun = [\"/bin/true\"]\nfilter = [\"colour=red\"]\n");
        assert!(
            e.contains("line 3") && e.contains("unknown filter key"),
            "{e}"
        );
        let e = error("[[hook]]\nrun = [\"true\"]\n");
        assert!(e.contains("line 2") && e.contains("absolute path"), "{e}");
        let e = error("[[hook]]\nrun = [\"/bin/true\"]\nuser = \"no-such-user-zonemon\"\n");
        assert!(e.contains("line 3") && e.contains("no user"), "{e}");
        let e = error("[[hook]]\nrun = [\"/bin/true\"]\nshell = true\n");
        assert!(e.contains("line 3") && e.contains("shell"), "{e}");
        let e = error("hook_concurrency = 0\n");
        assert!(e.contains("at least 1"), "{e}");
        let e = format!(
            "{:#}",
            load(Path::new("/nonexistent/z.toml"), true).unwrap_err()
        );
        assert!(e.contains("/nonexistent/z.toml"), "{e}");
        assert!(load(Path::new("/nonexistent/z.toml"), false).is_ok());
    }

    /// The packaged file reads, as shipped and with every example uncommented.
    #[test]
    fn the_packaged_config_file_reads() {
        let shipped = include_str!("../../../packaging/zonemon.toml");
        assert!(parse(shipped).unwrap().hook.is_empty());
        let examples: String = shipped
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.starts_with("[[") || l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' '))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&examples).unwrap_or_else(|e| panic!("{e:#}\n{examples}"));
        assert_eq!(
            c.journal.as_deref(),
            Some(Path::new(crate::journal::DEFAULT_PATH))
        );
        assert_eq!(
            c.metrics,
            Some(Some(crate::cli::DEFAULT_DAEMON_METRICS.parse().unwrap()))
        );
        assert_eq!(c.hook_concurrency, Some(crate::hooks::DEFAULT_CONCURRENCY));
        assert_eq!(c.hook_queue, Some(crate::hooks::DEFAULT_QUEUE));
        assert_eq!(c.hook[0].name(), "page");
        assert_eq!(c.hook[0].timeout, crate::hooks::DEFAULT_TIMEOUT);
    }

    #[test]
    fn a_hook_flag_is_an_inline_table() {
        let h = parse_hook(r#"{ run = ["/bin/true", "a b"], filter = ["exit=nonzero"] }"#).unwrap();
        assert_eq!(h.run, ["/bin/true", "a b"]);
        let e = parse_hook(r#"{ run = ["/bin/true"], colour = 1 }"#).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        assert!(parse_hook("/bin/true").is_err());
    }
}
