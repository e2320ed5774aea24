//! Values given on the command line that are more than a number: spans of
//! time (`30d`, `1h`, `10m`), instants (a span ago, or RFC 3339), and sizes
//! (`1GiB`). Errors say what was expected; clap adds the flag's name.

use std::time::Duration;

use zonemon_core::timefmt::parse_rfc3339;

/// `text` as a number and the unit after it (`1.5h` → 1.5, `h`); `None` without a number.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    Some((num.parse().ok()?, unit))
}

/// A span such as `30d`, `12h`, `10m`, `90s`, `1.5h`, `2w`; more than zero.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(text)
        .ok_or_else(|| format!("`{text}` is not a span of time like 30d, 1h, 10m or 90s"))?;
    let unit_s = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        "" => {
            return Err(format!(
                "`{text}` needs a unit: s, m, h, d or w (e.g. {text}s)"
            ))
        }
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use s, m, h, d or w)"
            ))
        }
    };
    let secs = n * unit_s;
    if !(secs > 0.0 && secs <= 100.0 * 365.0 * 86_400.0) {
        return Err(format!(
            "`{text}` is out of range (more than 0, at most 100 years)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An instant given as a span before `now_unix_ns` (`1h`: an hour ago) or
/// as RFC 3339 (`2026-12-02T04:00:00Z`); nanoseconds since the Unix epoch.
pub fn parse_instant(text: &str, now_unix_ns: i128) -> Result<i128, String> {
    if let Some(ns) = parse_rfc3339(text) {
        return Ok(ns);
    }
    let looks_like_a_date = text.len() >= 10 && text.as_bytes()[4] == b'-';
    match parse_span(text) {
        Ok(span) => Ok(now_unix_ns - span.as_nanos() as i128),
        Err(_) if looks_like_a_date => Err(format!(
            "`{text}` is not an RFC 3339 time like 2026-12-02T04:00:00Z"
        )),
        Err(_) => Err(format!(
            "`{text}` is neither a span ago (1h, 10m, 30d) nor an RFC 3339 time (2026-12-02T04:00:00Z)"
        )),
    }
}

/// A size in bytes such as `1GiB`, `512MiB`, `64KiB`, `10MB` (decimal), `4096`; at least 1.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(text)
        .ok_or_else(|| format!("`{text}` is not a size like 1GiB, 512MiB or 64KiB"))?;
    let scale: f64 = match unit {
        "" | "B" => 1.0,
        "KiB" | "K" | "k" => 1024.0,
        "MiB" | "M" => 1024.0 * 1024.0,
        "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        "TiB" | "T" => 1024.0f64.powi(4),
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use B, KiB, MiB, GiB, TiB or kB, MB, GB, TB)"
            ))
        }
    };
    let bytes = n * scale;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes as u64)
}

/// A duration such as `1s`, `100ms`, `250us`, `2m`; at least 1 ms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 1s, 100ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("`{s}` is out of range (1ms to 24h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_span("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_span("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_span("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "0s", "1y", "h", "-1h", "1e400d"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
        assert!(parse_span("10").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn instants() {
        let now = 1_800_000_000_000_000_000;
        assert_eq!(parse_instant("1h", now), Ok(now - 3_600_000_000_000));
        assert_eq!(
            parse_instant("2005-05-25T10:30:38Z", now),
            Ok(1_117_017_038_000_000_000)
        );
        assert!(parse_instant("2005-05-25T10:30", now)
            .unwrap_err()
            .contains("RFC 3339"));
        assert!(parse_instant("yesterday", now)
            .unwrap_err()
            .contains("neither"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "0", "1PiB", "lots", "GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
