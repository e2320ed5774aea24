//! Names on the bus: host ids, subjects, key-value keys and message ids.
//!
//! A host id is one NATS subject token (`[A-Za-z0-9_-]`, at most
//! [`MAX_HOST_ID`] bytes), checked once when the daemon starts, so it can go
//! into subjects, keys and `Nats-Msg-Id` as it is. Zone names never go into
//! a subject or a key (they are hostile: dots, wildcards, spaces); a zone is
//! keyed by its `zone_id`.

use anyhow::{Context, Result};

use super::SUBJECT_PREFIX;

/// The longest host id.
pub const MAX_HOST_ID: usize = 64;

/// Checks a `--host-id`: one subject token.
pub fn check_host_id(id: &str) -> Result<String, String> {
    if id.is_empty() || id.len() > MAX_HOST_ID {
        return Err(format!(
            "a host id has 1 to {MAX_HOST_ID} characters, `{}` has {}",
            id.escape_debug(),
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| !token_char(*c)) {
        return Err(format!(
            "a host id has only letters, digits, `-` and `_` (it is a subject token); `{}` has `{}`",
            id.escape_debug(),
            c.escape_debug()
        ));
    }
    Ok(id.to_string())
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `text` made into a subject token: every other character becomes `_`, bounded in length.
pub fn token(text: &str, max: usize) -> String {
    let t: String = text
        .chars()
        .take(max)
        .map(|c| if token_char(c) { c } else { '_' })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

/// The default host id: the hostname (as a token) and the first 8 characters of
/// `/etc/machine-id`, e.g. `web-1-4f2a9c0d`: readable and unique across clones.
pub fn default_host_id() -> Result<String> {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?;
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    Ok(host_id_from(host.trim(), machine.trim()))
}

fn host_id_from(hostname: &str, machine_id: &str) -> String {
    let machine = token(machine_id, 8);
    let host = token(hostname, MAX_HOST_ID - 1 - machine.len());
    if machine_id.is_empty() {
        host
    } else {
        format!("{host}-{machine}")
    }
}

/// The subject of a record of `host` with `event` (`zonemon.events.<host>.<event>`).
pub fn subject(host: &str, event: &str) -> String {
    format!("{SUBJECT_PREFIX}.{host}.{}", token(event, 32))
}

/// The key-value key of a zone of `host`.
pub fn zone_key(host: &str, zone_id: u64) -> String {
    format!("{host}.{zone_id}")
}

/// The `Nats-Msg-Id` of record `seq` of journal `journal` of `host`.
pub fn msg_id(host: &str, journal: &str, seq: u64) -> String {
    format!("{host}:{journal}:{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_one_token() {
        assert_eq!(check_host_id("web-1_a").unwrap(), "web-1_a");
        for bad in ["", "web.1", "a*", "a>", "a b", "é", &"x".repeat(65)] {
            assert!(check_host_id(bad).is_err(), "{bad}");
        }
        assert!(check_host_id("a\nb").unwrap_err().contains("\\n"));
    }

    #[test]
    fn the_default_host_id_is_a_token_with_the_machine() {
        assert_eq!(
            host_id_from("web-1.example.com", "4f2a9c0d11223344"),
            "web-1_example_com-4f2a9c0d"
        );
        assert_eq!(host_id_from("a", ""), "a");
        let long = host_id_from(&"h*".repeat(100), "0123456789");
        assert!(check_host_id(&long).is_ok(), "{long}");
        assert!(long.ends_with("-01234567"));
    }

    #[test]
    fn subjects_and_keys_never_carry_wildcards() {
        assert_eq!(subject("web-1", "booted"), "zonemon.events.web-1.booted");
        assert_eq!(subject("h", "a.b*>"), "zonemon.events.h.a_b__");
        assert_eq!(subject("h", ""), "zonemon.events.h._");
        assert_eq!(zone_key("h", 7), "h.7");
        assert_eq!(msg_id("h", "j", 3), "h:j:3");
    }

    proptest::proptest! {
        #[test]
        fn tokens_are_tokens(s in "\\PC*") {
            let t = token(&s, 16);
            proptest::prop_assert!(check_host_id(&t).is_ok(), "{}", t);
        }
    }
}
