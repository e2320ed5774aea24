//! Drawing `zonemon top`: a status line, the transitions/s sparkline, the
//! zone table, the event log and the key help (or the filter being typed).
//! A small terminal drops the sparkline, then the log, then columns; nothing
//! here reads a clock or the feed: it draws a [`Model`] and a [`ViewState`].

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::model::{duration_text, Kind, Model, Sort, State, Zone};
use super::state::ViewState;

/// The moment a frame is drawn at.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Unix time in ns (uptimes).
    pub unix_ns: i128,
    /// Seconds since the view started (the rate counter's clock).
    pub secs: u64,
}

/// One column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Host,
    Name,
    Runtime,
    State,
    Uptime,
    Restarts,
    Exit,
    Oom,
}

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Host => "HOST",
            Col::Name => "NAME",
            Col::Runtime => "RUNTIME",
            Col::State => "STATE",
            Col::Uptime => "UPTIME",
            Col::Restarts => "RESTARTS",
            Col::Exit => "LAST EXIT",
            Col::Oom => "OOM",
        }
    }

    fn width(self) -> Constraint {
        match self {
            Col::Host => Constraint::Max(20),
            Col::Name => Constraint::Fill(1),
            Col::Runtime => Constraint::Length(10),
            Col::State => Constraint::Length(8),
            Col::Uptime => Constraint::Length(7),
            Col::Restarts => Constraint::Length(8),
            Col::Exit => Constraint::Length(9),
            Col::Oom => Constraint::Length(3),
        }
    }

    fn sorts_by(self) -> Option<Sort> {
        match self {
            Col::Host => Some(Sort::Host),
            Col::Name => Some(Sort::Name),
            Col::Runtime => Some(Sort::Runtime),
            Col::State => Some(Sort::State),
            Col::Uptime => Some(Sort::Uptime),
            Col::Restarts => Some(Sort::Restarts),
            Col::Exit | Col::Oom => None,
        }
    }

    fn cell(self, z: &Zone, now: Now) -> Cell<'_> {
        match self {
            Col::Host => Cell::from(z.host.as_deref().unwrap_or("")),
            Col::Name => Cell::from(z.name.as_str()),
            Col::Runtime => Cell::from(z.runtime.as_str()),
            Col::State => Cell::from(z.state.as_str()).style(match z.state {
                State::Ready => Style::new().fg(Color::Yellow),
                State::Running => Style::new().fg(Color::Green),
                State::Shutdown => Style::new().fg(Color::DarkGray),
            }),
            Col::Uptime => Cell::from(duration_text(z.uptime_ns(now.unix_ns))),
            Col::Restarts => Cell::from(z.restarts.to_string()),
            Col::Exit => match &z.last {
                Some(end) if end.failed => {
                    Cell::from(end.exit.clone()).style(Style::new().fg(Color::Red))
                }
                Some(end) => Cell::from(end.exit.clone()),
                None => Cell::from("-"),
            },
            Col::Oom => match z.last.as_ref().is_some_and(|e| e.oom) {
                true => Cell::from("OOM").style(Style::new().fg(Color::Red).bold()),
                false => Cell::from(""),
            },
        }
    }
}

/// The columns that fit `width` (the host only in fleet mode).
fn columns(width: u16, fleet: bool) -> Vec<Col> {
    let mut cols = vec![Col::Name, Col::State, Col::Exit];
    if width >= 45 {
        cols = vec![Col::Name, Col::State, Col::Uptime, Col::Exit, Col::Oom];
    }
    if width >= 70 {
        cols = vec![
            Col::Name,
            Col::Runtime,
            Col::State,
            Col::Uptime,
            Col::Restarts,
            Col::Exit,
            Col::Oom,
        ];
    }
    if fleet && width >= 60 {
        cols.insert(0, Col::Host);
    }
    cols
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, model: &Model, state: &mut ViewState, now: Now) {
    let area = frame.area();
    let h = area.height;
    let spark_h = match h {
        0..12 => 0,
        12..20 => 1,
        _ => 3,
    };
    let log_h = match h {
        0..9 => 0,
        9..16 => 3,
        _ => (h / 3).max(5),
    };
    let [status, spark, table, log, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(spark_h),
        Constraint::Min(2),
        Constraint::Length(log_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let rows = model.rows(&state.filter, state.sort, state.reverse, now.unix_ns);
    draw_status(frame, status, model, state, rows.len(), now);
    if spark_h > 0 {
        draw_sparkline(frame, spark, model, now);
    }
    draw_table(frame, table, &rows, model.fleet, state, now);
    if log_h > 0 {
        draw_log(frame, log, model, state);
    }
    draw_footer(frame, footer, state);
}

fn draw_status(
    frame: &mut Frame,
    area: Rect,
    model: &Model,
    state: &ViewState,
    shown: usize,
    now: Now,
) {
    let total = model.zone_count();
    let zones = match shown == total {
        true => format!("{total} zones"),
        false => format!("{shown} of {total} zones"),
    };
    let mut spans = vec![
        Span::styled("zonemon top", Style::new().bold()),
        Span::raw(format!(
            " · {} · {zones} · {:.1}/s",
            state.source,
            model.rate.per_second(now.secs, 10)
        )),
    ];
    let trouble = Style::new().fg(Color::Magenta).bold();
    if model.lost_notices > 0 {
        spans.push(Span::styled(format!(" · lost {}", model.lost), trouble));
    }
    if model.resynced > 0 {
        spans.push(Span::styled(
            format!(" · resynced {}", model.resynced),
            trouble,
        ));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_sparkline(frame: &mut Frame, area: Rect, model: &Model, now: Now) {
    let bordered = area.height >= 3;
    let inner_w = area.width.saturating_sub(if bordered { 2 } else { 0 }) as usize;
    let data = model.rate.series(now.secs, inner_w);
    let mut spark = Sparkline::default()
        .data(&data)
        .style(Style::new().fg(Color::Cyan));
    if bordered {
        spark = spark.block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" transitions/s, last {inner_w} s ")),
        );
    }
    frame.render_widget(spark, area);
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    rows: &[&Zone],
    fleet: bool,
    state: &mut ViewState,
    now: Now,
) {
    let cols = columns(area.width, fleet);
    let header = Row::new(cols.iter().map(|c| {
        let mut title = c.title().to_string();
        if c.sorts_by() == Some(state.sort) {
            title.push(if state.reverse { '▼' } else { '▲' });
        }
        Cell::from(title)
    }))
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED));
    let visible = area.height.saturating_sub(1) as usize;
    state.clamp_table(rows.len(), visible);
    let body = rows
        .iter()
        .skip(state.table_offset)
        .take(visible)
        .map(|z| Row::new(cols.iter().map(|c| c.cell(z, now))));
    let table = Table::new(body, cols.iter().map(|c| c.width()))
        .header(header)
        .column_spacing(1);
    frame.render_widget(table, area);
}

fn draw_log(frame: &mut Frame, area: Rect, model: &Model, state: &mut ViewState) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(match state.log_back {
            0 => " events ".to_string(),
            n => format!(" events (scrolled back {n}; End follows) "),
        });
    let inner = block.inner(area);
    let lines = model.log(&state.filter);
    let height = inner.height as usize;
    state.clamp_log(lines.len(), height);
    let end = lines.len() - state.log_back;
    let shown = lines[end.saturating_sub(height)..end].iter().map(|l| {
        let style = match l.kind {
            Kind::Up => Style::new().fg(Color::Green),
            Kind::Quiet => Style::new().fg(Color::DarkGray),
            Kind::Ended => Style::new(),
            Kind::Failed => Style::new().fg(Color::Red).bold(),
            Kind::Lost => Style::new().fg(Color::Magenta).bold(),
            Kind::Notice => Style::new().fg(Color::Cyan),
        };
        Line::from(vec![
            Span::styled(format!("{:<9}", l.time), Style::new().fg(Color::DarkGray)),
            Span::styled(l.text.as_str(), style),
        ])
    });
    frame.render_widget(Paragraph::new(shown.collect::<Vec<_>>()).block(block), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &ViewState) {
    let line = if state.editing || !state.filter_text.is_empty() {
        let mut spans = vec![
            Span::styled("filter: ", Style::new().bold()),
            Span::raw(state.filter_text.as_str()),
        ];
        if state.editing {
            spans.push(Span::styled("█", Style::new().fg(Color::Gray)));
        }
        match &state.filter_error {
            Some(e) => spans.push(Span::styled(format!("  {e}"), Style::new().fg(Color::Red))),
            None if state.editing => spans.push(Span::styled(
                "  (Enter keeps it, Esc clears it)",
                Style::new().fg(Color::DarkGray),
            )),
            None => spans.push(Span::styled(
                "  (/ edits, Esc clears)",
                Style::new().fg(Color::DarkGray),
            )),
        }
        Line::from(spans)
    } else {
        Line::styled(
            "q quit  / filter  s sort  r reverse  ↑↓ zones  PgUp/PgDn events  End follow",
            Style::new().fg(Color::DarkGray),
        )
    };
    frame.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use serde_json::json;

    fn screen(model: &Model, state: &mut ViewState, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let now = Now {
            unix_ns: zonemon_core::timefmt::parse_rfc3339("2026-12-02T10:01:00Z").unwrap(),
            secs: 3,
        };
        term.draw(|f| draw(f, model, state, now)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn model() -> Model {
        let mut m = Model::default();
        for (id, name, ev) in [
            (1, "web-1", "booted"),
            (2, "db\u{1b}[31m", "booted"),
            (3, "job", "shutdown"),
        ] {
            let r = json!({"event": ev, "zone_id": id, "name": name, "runtime": "docker",
                           "time": "2026-12-02T10:00:00Z", "exit_code": 2, "oom_killed": true});
            m.take(r.as_object().unwrap().clone(), 3);
        }
        m
    }

    #[test]
    fn shows_zones_columns_and_events() {
        let mut state = ViewState::new("standalone (ebpf)".into(), "");
        let s = screen(&model(), &mut state, 100, 30);
        for want in [
            "NAME▲",
            "RUNTIME",
            "UPTIME",
            "LAST EXIT",
            "OOM",
            "web-1",
            "docker",
            "1m00s",
            "3 zones",
            "transitions/s",
        ] {
            assert!(s.contains(want), "{want} missing from\n{s}");
        }
        assert!(s.contains("db\\x1b[31m"), "escaped:\n{s}");
        assert!(s.contains("shutdown job  exit 2  OOM-KILLED"), "{s}");
        assert!(s.contains("q quit"), "{s}");
    }

    #[test]
    fn a_small_terminal_keeps_names_and_states() {
        let mut state = ViewState::new("daemon".into(), "");
        let s = screen(&model(), &mut state, 40, 8);
        assert!(
            s.contains("NAME") && s.contains("web-1") && s.contains("running"),
            "{s}"
        );
        assert!(
            !s.contains("transitions/s") && !s.contains("RUNTIME"),
            "{s}"
        );
        // Even a tiny one draws without panicking.
        screen(&model(), &mut state, 5, 2);
        screen(&model(), &mut state, 1, 1);
    }

    #[test]
    fn the_filter_line_narrows_and_says_what_is_wrong() {
        let mut state = ViewState::new("daemon".into(), "name=web-*");
        let s = screen(&model(), &mut state, 100, 30);
        assert!(
            s.contains("1 of 3 zones") && s.contains("filter: name=web-*"),
            "{s}"
        );
        assert!(!s.contains("job  exit"), "the log is filtered too:\n{s}");
        state.set_filter("bogus=1".into());
        let s = screen(&model(), &mut state, 100, 30);
        assert!(s.contains("unknown filter key"), "{s}");
        assert!(
            s.contains("1 of 3 zones"),
            "the last good filter stays:\n{s}"
        );
    }

    #[test]
    fn fleet_records_get_a_host_column() {
        let mut m = model();
        let r = json!({"event": "booted", "zone_id": 1, "name": "far", "host": "h-9", "time": "2026-12-02T10:00:00Z"});
        m.take(r.as_object().unwrap().clone(), 3);
        let mut state = ViewState::new("fleet".into(), "");
        let s = screen(&m, &mut state, 100, 30);
        assert!(s.contains("HOST") && s.contains("h-9"), "{s}");
    }
}
