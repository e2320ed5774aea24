//! Reaching the NATS servers: their addresses (never with secrets in them),
//! credentials and TLS, and errors that say what to do.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use async_nats::{ConnectErrorKind, ConnectOptions};

/// The servers to reach, as `nats://HOST:PORT` or `tls://HOST:PORT`; shown as they are
/// (they hold no secrets: user info in a URL is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Servers(pub Vec<String>);

impl Servers {
    /// Parses `URL[,URL…]`; a URL without a scheme is `nats://`.
    pub fn parse(text: &str) -> Result<Servers, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (scheme, rest) = match part.split_once("://") {
                Some((s, r)) => (s, r),
                None => ("nats", part),
            };
            if !matches!(scheme, "nats" | "tls") {
                return Err(format!(
                    "`{}`: a server is nats://HOST:PORT or tls://HOST:PORT",
                    part.escape_debug()
                ));
            }
            if rest.contains('@') {
                // Said without the URL, which may hold a password.
                return Err(
                    "a server URL with a user or password in it: give credentials with \
                     --nats-user and --nats-password-file, --nats-creds or --nats-nkey, so they \
                     never show in `ps` or a log"
                        .into(),
                );
            }
            let hostport = rest.trim_end_matches('/');
            let ok = hostport
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok || hostport.contains('/') || hostport.chars().any(char::is_whitespace) {
                return Err(format!(
                    "`{}`: a server is nats://HOST:PORT",
                    part.escape_debug()
                ));
            }
            out.push(format!("{scheme}://{hostport}"));
        }
        if out.is_empty() {
            return Err("no server given (nats://HOST:PORT[,…])".into());
        }
        Ok(Servers(out))
    }

    /// The servers, for messages.
    pub fn shown(&self) -> String {
        self.0.join(",")
    }
}

/// Credentials and TLS files (any may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// A credentials file (JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// A file with an nkey seed.
    pub nkey: Option<PathBuf>,
    /// A user name (with `password_file`).
    pub user: Option<String>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// A CA file to trust (requires TLS).
    pub tls_ca: Option<PathBuf>,
    /// A client certificate.
    pub tls_cert: Option<PathBuf>,
    /// Its key.
    pub tls_key: Option<PathBuf>,
}

/// A secret's first line, read from `path`.
fn secret(path: &PathBuf, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        anyhow::bail!("the {what} file {} is empty", path.display());
    }
    Ok(line)
}

/// The client options for `auth`, named `name` on the server; every reconnection
/// is retried for ever (the daemon keeps journaling meanwhile).
pub async fn options(auth: &Auth, name: &str) -> Result<ConnectOptions> {
    let mut o = ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((100u64 << attempt.min(5)).min(2_000))
        });
    if let Some(p) = &auth.creds {
        o = o
            .credentials_file(p)
            .await
            .with_context(|| format!("reading the credentials file {}", p.display()))?;
    }
    if let Some(p) = &auth.nkey {
        o = o.nkey(secret(p, "nkey seed")?);
    }
    if let (Some(user), Some(p)) = (&auth.user, &auth.password_file) {
        o = o.user_and_password(user.clone(), secret(p, "password")?);
    }
    if let Some(ca) = &auth.tls_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&auth.tls_cert, &auth.tls_key) {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o)
}

/// Why a connection failed: whether trying again may help, and what to say.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The servers cannot be reached now (refused, timed out, DNS): try again later.
    Unreachable(anyhow::Error),
    /// They answered but refused us, or the setup is wrong: trying again will not help.
    Refused(anyhow::Error),
}

/// Connects to `servers` once (the client reconnects by itself for ever after);
/// `disconnections`, when given, counts the connections lost.
pub async fn connect(
    servers: &Servers,
    auth: &Auth,
    name: &str,
    disconnections: Option<Arc<AtomicU64>>,
) -> Result<async_nats::Client, ConnectFailure> {
    let mut opts = options(auth, name).await.map_err(ConnectFailure::Refused)?;
    if let Some(count) = disconnections {
        opts = opts.event_callback(move |event| {
            if matches!(event, async_nats::Event::Disconnected) {
                count.fetch_add(1, Ordering::Relaxed);
            }
            async {}
        });
    }
    let shown = servers.shown();
    let addrs: Vec<async_nats::ServerAddr> = servers
        .0
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| ConnectFailure::Refused(anyhow!("the server list {shown}: {e}")))?;
    opts.connect(addrs).await.map_err(|e| match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
            ConnectFailure::Refused(anyhow!(
                "the NATS server at {shown} refused zonemon's credentials ({e}): check \
                 --nats-user/--nats-password-file, --nats-creds or --nats-nkey"
            ))
        }
        ConnectErrorKind::Tls => ConnectFailure::Refused(anyhow!(
            "TLS with the NATS server at {shown} failed ({e}): check --nats-tls-ca and the \
             server's certificate"
        )),
        ConnectErrorKind::ServerParse => {
            ConnectFailure::Refused(anyhow!("the server list {shown}: {e}"))
        }
        _ => ConnectFailure::Unreachable(anyhow!("cannot reach the NATS server at {shown}: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_and_refuse_secrets() {
        assert_eq!(
            Servers::parse("nats://a:4222, tls://b:1,c:2").unwrap().0,
            ["nats://a:4222", "tls://b:1", "nats://c:2"]
        );
        let e = Servers::parse("nats://u:hunter2@a:4222").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("--nats-user"), "{e}");
        for bad in [
            "",
            "http://a:1",
            "nats://a",
            "nats://a:x",
            "nats://:1",
            "nats://a:1/p",
        ] {
            assert!(Servers::parse(bad).is_err(), "{bad}");
        }
    }
}
