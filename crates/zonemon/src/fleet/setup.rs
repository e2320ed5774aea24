//! The stream and the key-value bucket: created when missing, else checked,
//! with a clear error for a server without JetStream, missing permissions,
//! or a stream whose settings differ from the daemon's.

use std::fmt::Display;
use std::time::Duration;

use anyhow::anyhow;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, kv, stream};

use super::connect::ConnectFailure;
use super::{BUCKET, SUBJECT_PREFIX};
use humantime::format_duration as format_span;

/// The stream the daemon publishes to, and the settings it creates it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Its name.
    pub name: String,
    /// Its replicas.
    pub replicas: u8,
    /// How long it keeps a record.
    pub max_age: Duration,
    /// Its duplicate window.
    pub duplicate_window: Duration,
}

/// The subjects of the stream.
pub fn subjects() -> String {
    format!("{SUBJECT_PREFIX}.>")
}

/// What a JetStream request's failure means, in words for the user.
pub fn explain(e: &dyn Display, servers: &str) -> ConnectFailure {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("no responders")
        || lower.contains("not enabled")
        || lower.contains("resource does not exist")
        || lower.contains("10076")
    {
        ConnectFailure::Refused(anyhow!(
            "the NATS server at {servers} has no JetStream ({text}): start it with -js \
             (and -sd DIR), or enable jetstream in its configuration"
        ))
    } else if lower.contains("permission") || lower.contains("authorization") {
        ConnectFailure::Refused(anyhow!(
            "the NATS server at {servers} does not allow zonemon's user this ({text}): it needs \
             to publish to {SUBJECT_PREFIX}.> and $KV.{BUCKET}.>, and to use $JS.API.>"
        ))
    } else if lower.contains("timed out") || lower.contains("disconnect") {
        ConnectFailure::Unreachable(anyhow!("JetStream at {servers} did not answer ({text})"))
    } else {
        ConnectFailure::Refused(anyhow!("JetStream at {servers}: {text}"))
    }
}

/// The stream `s`: created if missing; an existing one is used if its subjects,
/// replicas, max age and duplicate window are `s`'s, else an error says which differ.
/// Returns whether it was created.
pub async fn stream(
    js: &jetstream::Context,
    s: &StreamSettings,
    servers: &str,
) -> Result<bool, ConnectFailure> {
    match js.get_stream(&s.name).await {
        Ok(mut existing) => {
            let info = existing.info().await.map_err(|e| explain(&e, servers))?;
            let diffs = differences(&info.config, s);
            if diffs.is_empty() {
                Ok(false)
            } else {
                Err(ConnectFailure::Refused(anyhow!(
                    "the stream {} on {servers} exists with other settings than zonemon's: {}; \
                     give zonemon its settings (--stream-replicas, --stream-max-age, \
                     --stream-duplicate-window), or change the stream (nats stream edit {}), \
                     or use another (--stream)",
                    s.name,
                    diffs.join("; "),
                    s.name
                )))
            }
        }
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            js.create_stream(config(s))
                .await
                .map_err(|e| explain(&e, servers))?;
            Ok(true)
        }
        Err(e) => Err(explain(&e, servers)),
    }
}

fn config(s: &StreamSettings) -> stream::Config {
    stream::Config {
        name: s.name.clone(),
        description: Some("zonemon: every host's zone transitions".into()),
        subjects: vec![subjects()],
        num_replicas: usize::from(s.replicas),
        max_age: s.max_age,
        duplicate_window: s.duplicate_window,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

/// How `have` differs from `want`, one phrase per setting.
fn differences(have: &stream::Config, want: &StreamSettings) -> Vec<String> {
    let mut out = Vec::new();
    if !have.subjects.iter().any(|s| *s == subjects() || s == ">") {
        out.push(format!("subjects {:?}, not {}", have.subjects, subjects()));
    }
    if have.num_replicas.max(1) != usize::from(want.replicas) {
        out.push(format!(
            "replicas {}, not {} (--stream-replicas)",
            have.num_replicas, want.replicas
        ));
    }
    if have.max_age != want.max_age {
        out.push(format!(
            "max age {}, not {} (--stream-max-age)",
            format_span(have.max_age),
            format_span(want.max_age)
        ));
    }
    if have.duplicate_window != want.duplicate_window {
        out.push(format!(
            "duplicate window {}, not {} (--stream-duplicate-window)",
            format_span(have.duplicate_window),
            format_span(want.duplicate_window)
        ));
    }
    out
}

/// The bucket of running zones, created (one value per key, `replicas` copies) if missing.
///
/// Its stream is made here with the key-value conventions (the stream `KV_<bucket>`,
/// subjects `$KV.<bucket>.>`, one message per subject, roll-ups allowed, deletes denied,
/// direct gets): the client's own `create_key_value` first asks for the account's
/// information in a form Debian's nats-server 2.9 does not send.
pub async fn bucket(
    js: &jetstream::Context,
    replicas: u8,
    servers: &str,
) -> Result<kv::Store, ConnectFailure> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        return Ok(store);
    }
    js.create_stream(stream::Config {
        name: format!("KV_{BUCKET}"),
        description: Some("zonemon: the zones running on every host (<host>.<zone_id>)".into()),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        num_replicas: usize::from(replicas),
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        max_messages: -1,
        max_bytes: -1,
        max_consumers: -1,
        max_message_size: -1,
        ..Default::default()
    })
    .await
    .map_err(|e| explain(&e, servers))?;
    js.get_key_value(BUCKET)
        .await
        .map_err(|e| explain(&e, servers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_setting() {
        let want = StreamSettings {
            name: "ZONEMON".into(),
            replicas: 1,
            max_age: Duration::from_secs(7 * 86_400),
            duplicate_window: Duration::from_secs(600),
        };
        assert!(differences(&config(&want), &want).is_empty());
        let mut have = config(&want);
        have.max_age = Duration::from_secs(3600);
        have.num_replicas = 3;
        let d = differences(&have, &want).join("; ");
        assert!(
            d.contains("max age 1h, not 7days") && d.contains("replicas 3, not 1"),
            "{d}"
        );
        have.subjects = vec!["other.>".into()];
        assert!(differences(&have, &want)[0].contains("other.>"));
    }
}
