//! Making names that zone owners control safe to print.
//!
//! Hostnames, runtime names and cgroup paths come from whoever runs the
//! container. Text output must never let them inject lines, terminal escape
//! sequences or unbounded lengths.

/// Longest name (in bytes of input) zonemon keeps; longer ones are cut and marked with `…`.
pub const MAX_NAME_LEN: usize = 256;

/// Cuts `s` to at most `max` bytes on a character boundary, appending `…` when it was cut.
pub fn bound(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Turns raw bytes from the kernel or a file into a bounded string; invalid UTF-8 becomes U+FFFD.
pub fn bounded_lossy(bytes: &[u8]) -> String {
    bound(&String::from_utf8_lossy(bytes), MAX_NAME_LEN)
}

/// Escapes `s` for one line of text output: control characters (including
/// newlines, tabs, ESC and DEL, and the C1 range), and backslashes become
/// `\n`, `\t`, `\\` or `\xNN` / `\u{NNNN}` escapes, so the result is one
/// printable line.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode bidirectional overrides and isolates, which can make a line read differently than it is.
fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x202a..=0x202e | 0x2066..=0x2069 | 0x200e | 0x200f)
}

/// Escapes a field of `zonemon list -p`: as [`escape_text`], and `:` becomes `\:`.
pub fn escape_field(s: &str) -> String {
    escape_text(s).replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_backslashes() {
        assert_eq!(escape_text("aap"), "aap");
        assert_eq!(escape_text("a\nZone x booted"), "a\\nZone x booted");
        assert_eq!(escape_text("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_text("a\\b"), "a\\\\b");
        assert_eq!(escape_text("del\x7f"), "del\\x7f");
        assert_eq!(escape_text("c1\u{9b}"), "c1\\u{009b}");
        assert_eq!(escape_text("rtl\u{202e}x"), "rtl\\u{202e}x");
        assert_eq!(escape_text("noot-ü"), "noot-ü");
    }

    #[test]
    fn escapes_colons_in_fields() {
        assert_eq!(escape_field("ns:pod"), "ns\\:pod");
        assert_eq!(escape_field("a\\:b"), "a\\\\\\:b");
    }

    #[test]
    fn bounds_on_char_boundaries() {
        assert_eq!(bound("abc", 3), "abc");
        assert_eq!(bound("abcd", 3), "abc…");
        assert_eq!(bound("aé", 2), "a…");
        let long = "x".repeat(10_000);
        assert_eq!(
            bounded_lossy(long.as_bytes()).len(),
            MAX_NAME_LEN + '…'.len_utf8()
        );
        assert_eq!(bounded_lossy(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn escaped_text_is_always_one_printable_line() {
        // Every byte value, alone and in pairs, must come out without control characters.
        for a in 0u8..=255 {
            for b in [0u8, b'\n', 0x1b, b'a'] {
                let s = bounded_lossy(&[a, b]);
                let e = escape_text(&s);
                assert!(!e.chars().any(|c| c.is_control()), "{e:?}");
            }
        }
    }
}
