//! The zone list of `zonemon list`: a table for people, and `-p` lines for scripts.

use crate::escape::{escape_field, escape_text};
use crate::event::{EventKind, ZoneEvent};

/// The state word of a zone whose latest transition is `kind`, in the
/// spirit of Solaris zone states: `ready`, `running`, `shutting_down`, `down`.
pub fn state_word(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Ready => "ready",
        EventKind::Booted | EventKind::Running => "running",
        EventKind::Shutdown => "shutting_down",
        EventKind::Down => "down",
    }
}

/// One line (without newline) of `zonemon list -p`, in the spirit of Solaris `zoneadm list -p`:
/// `zone_id:name:state:root:container_id:runtime:pidns`.
///
/// Missing fields are empty; every field is escaped with
/// [`escape_field`], so a `:` inside a field reads `\:` and the line never
/// holds a control character.
pub fn parseable_line(ev: &ZoneEvent, root: Option<&str>) -> String {
    let fields = [
        ev.zone_id.to_string(),
        ev.name.clone(),
        state_word(ev.kind).to_string(),
        root.unwrap_or_default().to_string(),
        ev.container_id.clone().unwrap_or_default(),
        ev.runtime.clone().unwrap_or_default(),
        ev.pidns.to_string(),
    ];
    fields
        .iter()
        .map(|f| escape_field(f))
        .collect::<Vec<_>>()
        .join(":")
}

/// Column headers of [`table`], and whether the column is numeric (right-aligned).
const COLUMNS: [(&str, bool); 8] = [
    ("ZONE_ID", true),
    ("NAME", false),
    ("STATE", false),
    ("PIDNS", true),
    ("INIT_PID", true),
    ("LEVEL", true),
    ("RUNTIME", false),
    ("CONTAINER_ID", false),
];

/// The zone list as a table with a header line and aligned columns, one line per zone, each ending in a newline.
///
/// Text is escaped with [`escape_text`]; a missing or empty value shows as
/// `-`. The root directory of each row is not shown.
pub fn table(rows: &[(ZoneEvent, Option<String>)]) -> String {
    let text = |s: Option<&str>| match s {
        Some(s) if !s.is_empty() => escape_text(s),
        _ => "-".to_string(),
    };
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|(ev, _root)| {
            [
                ev.zone_id.to_string(),
                text(Some(&ev.name)),
                state_word(ev.kind).to_string(),
                ev.pidns.to_string(),
                ev.init_pid.to_string(),
                ev.level.to_string(),
                text(ev.runtime.as_deref()),
                text(ev.container_id.as_deref()),
            ]
        })
        .collect();
    let mut widths = COLUMNS.map(|(h, _)| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header = COLUMNS.map(|(h, _)| h.to_string());
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - cell.chars().count());
            match COLUMNS[i].1 {
                true => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
                false => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes the zone list `rows` (each zone's latest transition and its root
/// directory) to `out`: the [`table`], or with `parseable` one
/// [`parseable_line`] per zone; then flushes.
pub fn write_list(
    rows: &[(ZoneEvent, Option<String>)],
    parseable: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    if parseable {
        for (ev, root) in rows {
            writeln!(out, "{}", parseable_line(ev, root.as_deref()))?;
        }
    } else {
        out.write_all(table(rows).as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    #[test]
    fn parseable_fields_in_order() {
        let ev = sample(EventKind::Running, "aap");
        assert_eq!(
            parseable_line(&ev, Some("/var/lib/aap")),
            "7:aap:running:/var/lib/aap:::4026532000"
        );
        assert_eq!(parseable_line(&ev, None), "7:aap:running::::4026532000");
        let mut ev = ev;
        ev.runtime = Some("docker".into());
        ev.container_id = Some("abc123".into());
        assert_eq!(
            parseable_line(&ev, Some("/")),
            "7:aap:running:/:abc123:docker:4026532000"
        );
    }

    #[test]
    fn parseable_fields_are_escaped() {
        let mut ev = sample(EventKind::Running, "ns:pod\nZone evil booted");
        ev.runtime = Some("a:b".into());
        ev.container_id = Some("\x1b[2J".into());
        let line = parseable_line(&ev, Some("/x:y\\z"));
        assert_eq!(
            line,
            "7:ns\\:pod\\nZone evil booted:running:/x\\:y\\\\z:\\x1b[2J:a\\:b:4026532000"
        );
        assert!(!line.chars().any(|c| c.is_control()));
        // Seven fields when split on unescaped colons.
        let mut fields = 1;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                ':' => fields += 1,
                _ => {}
            }
        }
        assert_eq!(fields, 7);
    }

    #[test]
    fn states() {
        assert_eq!(state_word(EventKind::Running), "running");
        assert_eq!(state_word(EventKind::Booted), "running");
        assert_eq!(state_word(EventKind::Shutdown), "shutting_down");
    }

    #[test]
    fn table_is_aligned() {
        let a = sample(EventKind::Running, "aap");
        let mut b = sample(EventKind::Running, "a-much-longer-name");
        b.zone_id = 12;
        b.init_pid = 99;
        b.level = 2;
        b.runtime = Some("docker".into());
        b.container_id = Some("0123456789ab".into());
        let t = table(&[(a, Some("/".into())), (b, None)]);
        let expected = "\
ZONE_ID  NAME                STATE         PIDNS  INIT_PID  LEVEL  RUNTIME  CONTAINER_ID
      7  aap                 running  4026532000      1234      1  -        -
     12  a-much-longer-name  running  4026532000        99      2  docker   0123456789ab
";
        assert_eq!(t, expected);
    }

    #[test]
    fn table_escapes_and_handles_empty() {
        assert_eq!(
            table(&[]),
            "ZONE_ID  NAME  STATE  PIDNS  INIT_PID  LEVEL  RUNTIME  CONTAINER_ID\n"
        );
        let mut ev = sample(EventKind::Running, "evil\nZone x booted\x1b[31m");
        ev.runtime = Some(String::new());
        let t = table(&[(ev, None)]);
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(t.contains("evil\\nZone x booted\\x1b[31m"));
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'));
        let mut ev = sample(EventKind::Running, "");
        ev.zone_id = 3;
        assert!(table(&[(ev, None)])
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("      3  -  "));
    }
}
