//! Draws rows of lives as one self-contained SVG: a row per zone name, a bar
//! per life, a mark at each end (exit code, signal, OOM kill), a time axis
//! in local time. Stays readable with 10,000 lives: at most [`MAX_ROWS`] rows
//! (the rest share one), and lives closer than a pixel merge into one bar
//! whose tooltip counts them.

use std::fmt::Write;

use zonemon_core::escape::escape_text;

use super::lives::{End, Life, Row};

/// Rows drawn one per name; zones past these share the last row.
pub const MAX_ROWS: usize = 400;

const WIDTH: f64 = 1200.0;
const LABEL_W: f64 = 260.0;
const ROW_H: f64 = 18.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 20.0;

/// The SVG of `rows` over `[t0, t1)` (nanoseconds since the Unix epoch).
pub fn render(rows: &[Row], t0: i128, t1: i128) -> String {
    let rows = limit_rows(rows);
    let height = TOP + ROW_H * rows.len().max(1) as f64 + 30.0;
    let x0 = LABEL_W + 10.0;
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i128| x0 + ((t - t0) as f64 / span).clamp(0.0, 1.0) * (WIDTH - x0 - RIGHT);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="zonemon-timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    s.push_str(STYLE);
    axis(&mut s, t0, t1, &x, height);
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let name = xml(&escape_text(&row.name));
        let _ = write!(
            s,
            r#"<g class="row" data-name="{name}" data-lives="{}"><text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            row.lives.len(),
            LABEL_W,
            y + 12.0,
            xml(&shorten(&escape_text(&row.name), 40)),
        );
        for bar in merge(&row.lives, &x, t1) {
            bar.draw(&mut s, &name, y);
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>\n");
    s
}

/// At most [`MAX_ROWS`] rows: the busiest names first keep theirs, the rest share one.
fn limit_rows(rows: &[Row]) -> Vec<Row> {
    if rows.len() <= MAX_ROWS {
        return rows.to_vec();
    }
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_by_key(|r| std::cmp::Reverse(r.lives.len()));
    let (kept, rest) = order.split_at(MAX_ROWS - 1);
    let mut out: Vec<Row> = kept.iter().map(|r| (*r).clone()).collect();
    out.sort_by_key(|r| r.lives[0].start_ns);
    let mut lives: Vec<Life> = rest.iter().flat_map(|r| r.lives.clone()).collect();
    lives.sort_by_key(|l| l.start_ns);
    out.push(Row {
        name: format!("({} more zone names)", rest.len()),
        lives,
    });
    out
}

/// A bar: one life, or lives merged because they are closer than a pixel.
struct Bar {
    x1: f64,
    x2: f64,
    lives: usize,
    failures: usize,
    /// The last life's end, and where it is drawn (when it ended in the window).
    end: End,
    end_x: Option<f64>,
    first: i128,
    last: i128,
    zone_id: u64,
}

impl Bar {
    fn draw(&self, s: &mut String, name: &str, y: f64) {
        let tip = if self.lives == 1 {
            format!(
                "{name} (zone {}): {} – {}, {}",
                self.zone_id,
                local(self.first),
                local(self.last),
                self.end.describe()
            )
        } else {
            format!(
                "{name}: {} lives {} – {}, {} failed",
                self.lives,
                local(self.first),
                local(self.last),
                self.failures
            )
        };
        let _ = write!(
            s,
            r#"<rect class="life" data-lives="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{tip}</title></rect>"#,
            self.lives,
            self.x1,
            y + 3.0,
            (self.x2 - self.x1).max(2.0),
            ROW_H - 6.0
        );
        if let Some(ex) = self.end_x {
            let _ = write!(
                s,
                r#"<circle class="exit {}" cx="{ex:.1}" cy="{:.1}" r="4"><title>{}</title></circle>"#,
                self.end.class(),
                y + ROW_H / 2.0,
                self.end.describe()
            );
        }
    }
}

/// The bars of `lives` (in start order) at pixel positions `x`.
fn merge(lives: &[Life], x: &dyn Fn(i128) -> f64, t1: i128) -> Vec<Bar> {
    let mut bars: Vec<Bar> = Vec::new();
    for l in lives {
        let end_t = l.end_ns.unwrap_or(t1);
        let (x1, x2) = (x(l.start_ns), x(end_t));
        let end_x = l.shutdown_ns.map(x);
        match bars.last_mut() {
            Some(b) if x1 < b.x2 + 1.0 => {
                b.x2 = b.x2.max(x2);
                b.lives += 1;
                b.failures += usize::from(l.end.is_failure());
                // The worst end of the merged lives is the one marked.
                if l.end.is_failure() || !b.end.is_failure() {
                    b.end = l.end;
                    b.end_x = end_x.or(b.end_x);
                }
                b.last = end_t;
            }
            _ => bars.push(Bar {
                x1,
                x2,
                lives: 1,
                failures: usize::from(l.end.is_failure()),
                end: l.end,
                end_x,
                first: l.start_ns,
                last: end_t,
                zone_id: l.zone_id,
            }),
        }
    }
    bars
}

/// The time axis: about eight ticks at a round step, in local time.
fn axis(s: &mut String, t0: i128, t1: i128, x: &dyn Fn(i128) -> f64, height: f64) {
    const STEPS_S: [i128; 14] = [
        1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400,
    ];
    let span_s = ((t1 - t0) / 1_000_000_000).max(1);
    let step = STEPS_S
        .iter()
        .copied()
        .find(|st| span_s / st <= 8)
        .unwrap_or(86400)
        * 1_000_000_000;
    let mut t = (t0 / step + 1) * step;
    let _ = write!(
        s,
        r#"<line class="axis" x1="{:.1}" y1="{TOP}" x2="{:.1}" y2="{TOP}"/>"#,
        x(t0),
        x(t1)
    );
    while t < t1 {
        let tx = x(t);
        let _ = write!(
            s,
            r#"<line class="tick" x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}"/><text class="time" x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP - 4.0,
            height - 24.0,
            TOP - 8.0,
            local(t)
        );
        t += step;
    }
}

/// `t` (ns since the Unix epoch) as local `HH:MM:SS`, with the date when not today's.
pub fn local(t: i128) -> String {
    let secs = (t / 1_000_000_000) as libc::time_t;
    // SAFETY: localtime_r fills the zeroed struct we own; plain old data.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    let mut today: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the calls' duration.
    unsafe {
        libc::localtime_r(&secs, &mut tm);
        libc::localtime_r(&now, &mut today);
    }
    let time = format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (tm.tm_year, tm.tm_yday) == (today.tm_year, today.tm_yday) {
        time
    } else {
        format!(
            "{}-{:02}-{:02} {time}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday
        )
    }
}

/// `text` escaped for XML (text and attribute values).
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

const STYLE: &str =
    "<style>.label{fill:#222}.time{fill:#555}.axis,.tick{stroke:#bbb;stroke-width:1}\
.life{fill:#4a90d9;opacity:.85}.life[data-lives]:not([data-lives=\"1\"]){fill:#2c5d8f}\
.exit{stroke:#fff;stroke-width:1}.exit.ok{fill:#5cb85c}.exit.nonzero{fill:#d9534f}\
.exit.signal{fill:#f0ad4e}.exit.oom{fill:#8e44ad}.exit.unknown{fill:#999}</style>";

#[cfg(test)]
mod tests {
    use super::*;

    fn life(zone: u64, start: i128, end: Option<i128>, how: End) -> Life {
        Life {
            zone_id: zone,
            start_ns: start,
            booted_ns: Some(start),
            shutdown_ns: end,
            end_ns: end,
            end: how,
        }
    }

    #[test]
    fn hostile_names_are_escaped_and_close_lives_merge() {
        let s = 1_000_000_000i128;
        let rows = vec![
            Row {
                name: "<script>alert(1)</script>\u{1b}[31m\"&'".into(),
                lives: vec![life(1, 10 * s, Some(20 * s), End::Code(3))],
            },
            Row {
                name: "busy".into(),
                // 1,000 lives within 100 ms of a 100 s window: one bar.
                lives: (0..1000)
                    .map(|i| {
                        life(
                            2 + i,
                            50 * s + i as i128 * 100_000,
                            Some(50 * s + i as i128 * 100_000 + 50_000),
                            End::Code(0),
                        )
                    })
                    .collect(),
            },
        ];
        let svg = render(&rows, 0, 100 * s);
        assert!(
            !svg.contains("<script>") && !svg.contains('\u{1b}'),
            "{svg}"
        );
        assert!(svg.contains("&lt;script&gt;"));
        assert_eq!(svg.matches("class=\"life\"").count(), 2, "1 + 1 merged");
        assert!(svg.contains("data-lives=\"1000\""));
        assert!(svg.contains("class=\"exit nonzero\""));
        assert!(svg.contains("1000 lives"));
    }

    #[test]
    fn rows_are_bounded() {
        let rows: Vec<Row> = (0..1000)
            .map(|i| Row {
                name: format!("z{i}"),
                lives: vec![life(i, i as i128, None, End::Running)],
            })
            .collect();
        let svg = render(&rows, 0, 2000);
        assert_eq!(svg.matches("class=\"row\"").count(), MAX_ROWS);
        assert!(svg.contains("(601 more zone names)"));
    }
}
