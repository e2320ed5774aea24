//! Medians, percentiles and the way figures are written in the table.

pub use zonemon_core::clock::clock_ns;

/// The `p`-th percentile (0–100) of `values` by nearest rank; None when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The median of `values`; None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 50.0)
}

/// A duration in nanoseconds, written with a unit that keeps 2–3 significant digits.
pub fn fmt_ns(ns: f64) -> String {
    let a = ns.abs();
    if a < 1e3 {
        format!("{ns:.0} ns")
    } else if a < 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if a < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if a < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `part/whole` as a percentage with one decimal, e.g. `99.5%`.
pub fn fmt_pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// KiB as MiB with two decimals.
pub fn fmt_mib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

/// `p50 X, p99 Y, max Z` of durations in ns.
pub fn fmt_dist(ns: &[f64]) -> String {
    match (
        percentile(ns, 50.0),
        percentile(ns, 99.0),
        percentile(ns, 100.0),
    ) {
        (Some(a), Some(b), Some(c)) => {
            format!("p50 {}, p99 {}, max {}", fmt_ns(a), fmt_ns(b), fmt_ns(c))
        }
        _ => "no samples".into(),
    }
}

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME.
pub fn realtime_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Parses zonemon's and Docker's RFC 3339 UTC times (`2026-11-26T05:37:09.349334525Z`) into ns since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let mut rest = &s[19..];
    let mut frac: i128 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        rest = &r[digits.len()..];
        let mut d = digits;
        d.truncate(9);
        let scale = 10i128.pow(9 - d.len() as u32);
        frac = d.parse::<i128>().ok()? * scale;
    }
    if rest != "Z" {
        return None;
    }
    Some(secs as i128 * 1_000_000_000 + frac)
}

/// ns since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn fmt_utc(ns: i128) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        let t = parse_rfc3339("2026-11-26T05:37:09.349334525Z").unwrap();
        assert_eq!(t % 1_000_000_000, 349_334_525);
        assert_eq!(fmt_utc(t), "2026-11-26 05:37:09 UTC");
        assert_eq!(
            parse_rfc3339("2026-11-26T05:37:09Z").unwrap() % 1_000_000_000,
            0
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_ns(950.0), "950 ns");
        assert_eq!(fmt_ns(45_300.0), "45 µs");
        assert_eq!(fmt_ns(1_234_000.0), "1.23 ms");
        assert_eq!(fmt_pct(1, 2), "50.0%");
    }
}
