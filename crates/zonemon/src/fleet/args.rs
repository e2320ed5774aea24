//! The fleet's command-line options: the daemon's publishing flags (and their
//! config-file keys), the credentials every fleet command takes, and
//! `--from` for `watch` and `list`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::connect::{Auth, Servers};
use super::names;
use super::publisher::PublishOptions;
use super::setup::StreamSettings;
use super::DEFAULT_STREAM;
use crate::units;

/// Credentials and TLS for the NATS servers (each also a config-file key of the daemon).
/// Secrets are read from files, never taken on the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {
    /// A NATS credentials file (a user JWT and its nkey seed, as `nsc` writes it).
    #[arg(long, value_name = "PATH")]
    pub nats_creds: Option<PathBuf>,
    /// A file holding an nkey seed (SU…) to sign the server's challenge with.
    #[arg(long, value_name = "PATH")]
    pub nats_nkey: Option<PathBuf>,
    /// A user name for the NATS servers (with --nats-password-file).
    #[arg(long, value_name = "NAME", requires = "nats_password_file")]
    pub nats_user: Option<String>,
    /// A file holding the password of --nats-user (its first line).
    #[arg(long, value_name = "PATH", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// Trust the server certificates this CA file (PEM) signed, and require TLS.
    #[arg(long, value_name = "PATH")]
    pub nats_tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for TLS, with --nats-tls-key.
    #[arg(long, value_name = "PATH", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "PATH", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
}

impl AuthArgs {
    /// The credentials, as given.
    pub fn auth(&self) -> Auth {
        Auth {
            creds: self.nats_creds.clone(),
            nkey: self.nats_nkey.clone(),
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
        }
    }
}

/// `zonemon daemon`'s publishing flags.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Publish every journal record to NATS JetStream at these servers
    /// (nats://HOST:PORT or tls://HOST:PORT, comma-separated); see README's "Fleet".
    #[arg(long, value_name = "URL[,URL…]")]
    pub publish: Option<String>,
    /// This host's id on the bus: letters, digits, `-`, `_` [default: the hostname and the
    /// first 8 characters of /etc/machine-id]
    #[arg(long, value_name = "ID", value_parser = names::check_host_id)]
    pub host_id: Option<String>,
    /// The JetStream stream (created if missing, else its settings are checked).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STREAM, value_parser = stream_name)]
    pub stream: String,
    /// The stream's replicas when the daemon creates it (1, or 3 on a 3-node cluster).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
    /// How long the stream keeps records (e.g. 7d).
    #[arg(long, value_name = "SPAN", default_value = "7d", value_parser = units::parse_span)]
    pub stream_max_age: Duration,
    /// The stream's duplicate window: a record published again within it is dropped by the server.
    #[arg(long, value_name = "SPAN", default_value = "10m", value_parser = units::parse_span)]
    pub stream_duplicate_window: Duration,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// The config file's fleet keys (each `None` when the file does not set it).
#[derive(Debug, Default)]
pub struct FleetKeys {
    /// `publish = "nats://127.0.0.1:4222"`.
    pub publish: Option<String>,
    /// `host_id = "web-1"`.
    pub host_id: Option<String>,
    /// `stream = "ZONEMON"`.
    pub stream: Option<String>,
    /// `stream_replicas = 1`.
    pub stream_replicas: Option<u8>,
    /// `stream_max_age = "7d"`.
    pub stream_max_age: Option<Duration>,
    /// `stream_duplicate_window = "10m"`.
    pub stream_duplicate_window: Option<Duration>,
    /// `nats_creds`, `nats_nkey`, `nats_user`, `nats_password_file`, `nats_tls_*`.
    pub auth: AuthArgs,
}

impl PublishArgs {
    /// The publishing options (`None`: not publishing): each flag given (`given(id)`),
    /// else the file's key, else the default.
    pub fn options(
        self,
        given: &dyn Fn(&str) -> bool,
        file: FleetKeys,
    ) -> Result<Option<PublishOptions>, String> {
        fn pick<T>(given: bool, flag: T, file: Option<T>) -> T {
            match file {
                Some(f) if !given => f,
                _ => flag,
            }
        }
        let Some(servers) = (if given("publish") {
            self.publish
        } else {
            file.publish.or(self.publish)
        }) else {
            return Ok(None);
        };
        let servers = Servers::parse(&servers).map_err(|e| format!("--publish: {e}"))?;
        let host_id = match pick(given("host_id"), self.host_id, file.host_id.map(Some)) {
            Some(h) => h,
            None => names::default_host_id().map_err(|e| format!("{e:#}"))?,
        };
        let a = self.auth;
        let f = file.auth;
        let path = |id: &str, flag: Option<PathBuf>, file: Option<PathBuf>| {
            if given(id) {
                flag
            } else {
                file.or(flag)
            }
        };
        let auth = Auth {
            creds: path("nats_creds", a.nats_creds, f.nats_creds),
            nkey: path("nats_nkey", a.nats_nkey, f.nats_nkey),
            user: if given("nats_user") {
                a.nats_user
            } else {
                f.nats_user.or(a.nats_user)
            },
            password_file: path(
                "nats_password_file",
                a.nats_password_file,
                f.nats_password_file,
            ),
            tls_ca: path("nats_tls_ca", a.nats_tls_ca, f.nats_tls_ca),
            tls_cert: path("nats_tls_cert", a.nats_tls_cert, f.nats_tls_cert),
            tls_key: path("nats_tls_key", a.nats_tls_key, f.nats_tls_key),
        };
        Ok(Some(PublishOptions {
            servers,
            auth,
            host_id,
            stream: StreamSettings {
                name: pick(given("stream"), self.stream, file.stream),
                replicas: pick(
                    given("stream_replicas"),
                    self.stream_replicas,
                    file.stream_replicas,
                ),
                max_age: pick(
                    given("stream_max_age"),
                    self.stream_max_age,
                    file.stream_max_age,
                ),
                duplicate_window: pick(
                    given("stream_duplicate_window"),
                    self.stream_duplicate_window,
                    file.stream_duplicate_window,
                ),
            },
        }))
    }
}

/// A stream name: letters, digits, `-`, `_` (NATS refuses `.`, `*`, `>` and spaces).
pub fn stream_name(s: &str) -> Result<String, String> {
    names::check_host_id(s)
        .map_err(|_| {
            format!(
                "`{}` is not a stream name (letters, digits, `-`, `_`)",
                s.escape_debug()
            )
        })
        .map(|_| s.to_string())
}

/// `--from` for `watch` and `list`: read the fleet from NATS instead of this host.
#[derive(Debug, Clone, Default, Args)]
pub struct FromArgs {
    /// Read the whole fleet from these NATS servers (nats://HOST:PORT[,…]) instead of this host.
    #[arg(long, value_name = "URL[,URL…]")]
    pub from: Option<String>,
    /// The fleet's stream.
    #[arg(long = "from-stream", value_name = "NAME", default_value = DEFAULT_STREAM, value_parser = stream_name, requires = "from")]
    pub stream: String,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// `watch --from`'s options.
#[derive(Debug, Clone, Default, Args)]
pub struct WatchFromArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Read through the durable consumer NAME (created if missing): a watch stopped and started
    /// again resumes exactly after the last record it printed.
    #[arg(long, value_name = "NAME", requires = "from", value_parser = stream_name)]
    pub durable: Option<String>,
}
