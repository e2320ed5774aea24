//! Times and durations as people and scripts write them, in API requests and
//! on the command line.

use std::time::{Duration, UNIX_EPOCH};

/// The longest duration accepted anywhere (a `timeout`, a `since` ago): 100 years.
const MAX_DURATION: Duration = Duration::from_secs(100 * 366 * 86_400);

/// Parses a point in time into nanoseconds since the Unix epoch:
/// - RFC 3339 in UTC: `2026-12-02T04:00:00Z`, `2026-12-02T04:00:00.123456789Z`;
/// - Unix seconds: `1764648000`, `1764648000.25`;
/// - a duration ago, counted from `now_unix_ns`: `10m`, `1h30m`, `2d`, `500ms`.
pub fn parse_time(s: &str, now_unix_ns: i128) -> Result<i128, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an empty time (give e.g. 10m, 2026-12-02T04:00:00Z or 1764648000)".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return unix_seconds(s);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        let d = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("`{}` is before 1970", s.escape_debug()))?;
        return Ok(d.as_nanos() as i128);
    }
    match parse_duration(s) {
        Ok(ago) => Ok(now_unix_ns - ago.as_nanos() as i128),
        Err(_) => Err(format!(
            "`{}` is not a time: give RFC 3339 in UTC (2026-12-02T04:00:00Z), Unix seconds, or a duration ago (10m, 1h30m, 2d)",
            s.escape_debug()
        )),
    }
}

/// Parses a duration such as `30s`, `1h30m`, `250ms` (humantime's syntax), at most 100 years.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!(
            "`{}` is not a duration like 30s, 10m or 1h30m: {e}",
            s.escape_debug()
        )
    })?;
    if d > MAX_DURATION {
        return Err(format!("`{}` is longer than 100 years", s.escape_debug()));
    }
    Ok(d)
}

/// `SECONDS[.FRACTION]` since the Unix epoch.
fn unix_seconds(s: &str) -> Result<i128, String> {
    let bad = || format!("`{}` is not Unix seconds", s.escape_debug());
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || whole.len() > 12 || frac.len() > 9 || frac.contains('.') {
        return Err(bad());
    }
    let secs: i128 = whole.parse().map_err(|_| bad())?;
    let nanos: i128 = match frac {
        "" => 0,
        f => format!("{f:0<9}").parse().map_err(|_| bad())?,
    };
    Ok(secs * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_764_648_000_000_000_000;

    #[test]
    fn absolute_times() {
        assert_eq!(parse_time("1764648000", NOW), Ok(NOW));
        assert_eq!(parse_time("1764648000.25", NOW), Ok(NOW + 250_000_000));
        assert_eq!(parse_time("2025-12-02T04:00:00Z", NOW), Ok(NOW));
        let t = zonemon_core::timefmt::rfc3339_nanos(NOW + 123_456_789);
        assert_eq!(parse_time(&t, 0), Ok(NOW + 123_456_789));
    }

    #[test]
    fn durations_ago() {
        assert_eq!(parse_time("10m", NOW), Ok(NOW - 600_000_000_000));
        assert_eq!(parse_time("1h30m", NOW), Ok(NOW - 5_400_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("1000y").is_err());
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for bad in [
            "",
            "soon",
            "1.2.3",
            "12345678901234",
            "2025-13-45T00:00:00Z",
            "-5m",
        ] {
            let e = parse_time(bad, NOW).unwrap_err();
            assert!(!e.is_empty() && !e.contains('\n'), "{bad}: {e}");
        }
        assert!(parse_duration("forever").is_err());
    }
}
