//! What the person at `zonemon top` chose: the filter typed, the sort, the
//! scroll positions; and what each key does to it.
//!
//! The filter is `--filter`'s language ([`Filter::parse`]), words separated by
//! spaces (`name=web-* event=booted`); a word without `=` is short for
//! `name=*WORD*`. It applies as it is typed: while the text does not parse,
//! the last filter that did stays in force and the error is shown.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use zonemon_core::filter::Filter;

use super::model::Sort;

/// The view's choices.
#[derive(Debug)]
pub struct ViewState {
    /// Where the records come from, as shown in the status line.
    pub source: String,
    /// The filter as typed.
    pub filter_text: String,
    /// The last filter that parsed.
    pub filter: Filter,
    /// Why the text typed does not parse, if it does not.
    pub filter_error: Option<String>,
    /// Whether keys go to the filter line.
    pub editing: bool,
    /// The table's order.
    pub sort: Sort,
    /// Reversed.
    pub reverse: bool,
    /// The first zone shown.
    pub table_offset: usize,
    /// How many events the log is scrolled back from the newest (0: follows).
    pub log_back: usize,
}

/// What a key asks of the program.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Redraw (something changed, or nothing did: cheap either way).
    Redraw,
    /// Leave.
    Quit,
}

/// Lines PgUp/PgDn move.
const PAGE: usize = 10;

impl ViewState {
    /// The initial state: `source` shown, `filter` (as typed) applied.
    pub fn new(source: String, filter: &str) -> ViewState {
        let mut s = ViewState {
            source,
            filter_text: String::new(),
            filter: Filter::default(),
            filter_error: None,
            editing: false,
            sort: Sort::default(),
            reverse: false,
            table_offset: 0,
            log_back: 0,
        };
        s.set_filter(filter.to_string());
        s
    }

    /// Sets the filter's text, and the filter when it parses.
    pub fn set_filter(&mut self, text: String) {
        let specs: Vec<String> = text
            .split_whitespace()
            .map(|w| match w.contains('=') {
                true => w.to_string(),
                false => format!("name=*{w}*"),
            })
            .collect();
        match Filter::parse(specs.iter().map(String::as_str)) {
            Ok(f) => {
                self.filter = f;
                self.filter_error = None;
                self.table_offset = 0;
            }
            Err(e) => self.filter_error = Some(e.to_string()),
        }
        self.filter_text = text;
    }

    /// What `key` does.
    pub fn key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::Redraw;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'd')) {
            return Action::Quit;
        }
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.set_filter(String::new());
                }
                KeyCode::Backspace => {
                    let mut t = self.filter_text.clone();
                    t.pop();
                    self.set_filter(t);
                }
                KeyCode::Char('u') if ctrl => self.set_filter(String::new()),
                KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                    let t = format!("{}{c}", self.filter_text);
                    self.set_filter(t);
                }
                _ => {}
            }
            return Action::Redraw;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('/' | 'f') => self.editing = true,
            KeyCode::Esc => self.set_filter(String::new()),
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Down | KeyCode::Char('j') => self.table_offset += 1,
            KeyCode::Up | KeyCode::Char('k') => {
                self.table_offset = self.table_offset.saturating_sub(1)
            }
            KeyCode::Home | KeyCode::Char('g') => self.table_offset = 0,
            KeyCode::PageUp => self.log_back += PAGE,
            KeyCode::PageDown => self.log_back = self.log_back.saturating_sub(PAGE),
            KeyCode::End | KeyCode::Char('G') => self.log_back = 0,
            _ => {}
        }
        Action::Redraw
    }

    /// Keeps the table's offset within `rows` zones shown `visible` at a time.
    pub fn clamp_table(&mut self, rows: usize, visible: usize) {
        self.table_offset = self.table_offset.min(rows.saturating_sub(visible));
    }

    /// Keeps the log's scroll within `lines` shown `visible` at a time.
    pub fn clamp_log(&mut self, lines: usize, visible: usize) {
        self.log_back = self.log_back.min(lines.saturating_sub(visible));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(s: &mut ViewState, code: KeyCode) -> Action {
        s.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(s: &mut ViewState, text: &str) {
        for c in text.chars() {
            press(s, KeyCode::Char(c));
        }
    }

    #[test]
    fn the_filter_applies_as_it_is_typed() {
        let mut s = ViewState::new(String::new(), "");
        press(&mut s, KeyCode::Char('/'));
        typed(&mut s, "name=web-*");
        assert!(s.filter_error.is_none() && !s.filter.is_empty());
        typed(&mut s, " bogus");
        assert!(
            s.filter_error.is_none(),
            "a bare word is a name: {:?}",
            s.filter_error
        );
        typed(&mut s, "=x");
        assert!(s
            .filter_error
            .as_deref()
            .unwrap()
            .contains("unknown filter key"));
        assert!(!s.filter.is_empty(), "the last good filter stays");
        press(&mut s, KeyCode::Enter);
        assert!(!s.editing);
        assert_eq!(press(&mut s, KeyCode::Char('q')), Action::Quit);
        press(&mut s, KeyCode::Esc);
        assert!(s.filter.is_empty() && s.filter_text.is_empty());
    }

    #[test]
    fn q_in_the_filter_is_a_letter_and_ctrl_c_always_quits() {
        let mut s = ViewState::new(String::new(), "");
        press(&mut s, KeyCode::Char('/'));
        assert_eq!(press(&mut s, KeyCode::Char('q')), Action::Redraw);
        assert_eq!(s.filter_text, "q");
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(s.key(ctrl_c), Action::Quit);
    }

    #[test]
    fn sorting_and_scrolling() {
        let mut s = ViewState::new(String::new(), "");
        press(&mut s, KeyCode::Char('s'));
        assert_eq!(s.sort, Sort::Host);
        press(&mut s, KeyCode::Char('r'));
        assert!(s.reverse);
        for _ in 0..5 {
            press(&mut s, KeyCode::Down);
        }
        s.clamp_table(4, 2);
        assert_eq!(s.table_offset, 2);
        press(&mut s, KeyCode::PageUp);
        s.clamp_log(3, 10);
        assert_eq!(s.log_back, 0);
    }
}
