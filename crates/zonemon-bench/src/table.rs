//! The report: one Markdown table (measure | zonemon | comparison | target |
//! verdict), the machine and command it came from, notes, and the data the
//! picture is drawn from.

use std::fmt::Write as _;

/// How a figure compares with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Pass,
    /// The target is missed.
    Miss,
    /// Missed by the median, but the spread of repeated runs includes the target: noise decides.
    Noisy,
    /// A figure without a target.
    Info,
    /// Not measured (the reason is in the row).
    NotRun,
    /// The measurement failed.
    Error,
}

impl Verdict {
    /// Pass when `ok`, else Miss.
    pub fn of(ok: bool) -> Verdict {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Miss
        }
    }

    /// The word in the table.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Noisy => "UNCLEAR (noise)",
            Verdict::Info => "info",
            Verdict::NotRun => "not run",
            Verdict::Error => "ERROR",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub measure: String,
    /// zonemon's figure.
    pub zonemon: String,
    /// What it is judged against, measured in the same run.
    pub comparison: String,
    /// The target.
    pub target: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// A latency distribution for the picture.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Source name.
    pub label: String,
    /// Latencies in ns.
    pub ns: Vec<f64>,
}

/// Completeness of each source at one parallelism, for the picture.
#[derive(Debug, Clone)]
pub struct ChurnGroup {
    /// Zones at a time.
    pub parallel: usize,
    /// (source, share seen in percent; None when the source was unavailable).
    pub shares: Vec<(String, Option<f64>)>,
}

/// Everything one run produced.
#[derive(Debug, Default)]
pub struct Report {
    /// Table rows, in order.
    pub rows: Vec<Row>,
    /// Notes under the table.
    pub notes: Vec<String>,
    /// (what, value) about the machine and the run.
    pub header: Vec<(String, String)>,
    /// Latency distributions.
    pub latency: Vec<Curve>,
    /// Churn completeness.
    pub churn: Vec<ChurnGroup>,
}

/// Makes a cell safe for a Markdown table row.
fn cell(s: &str) -> String {
    s.replace('|', "/").replace('\n', " ")
}

impl Report {
    /// Adds a row.
    pub fn row(
        &mut self,
        measure: &str,
        zonemon: &str,
        comparison: &str,
        target: &str,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            measure: measure.into(),
            zonemon: zonemon.into(),
            comparison: comparison.into(),
            target: target.into(),
            verdict,
        });
    }

    /// Adds a note.
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// The table alone.
    pub fn table(&self) -> String {
        let mut t = String::from("| measure | zonemon | comparison | target | verdict |\n| --- | --- | --- | --- | --- |\n");
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                cell(&r.measure),
                cell(&r.zonemon),
                cell(&r.comparison),
                cell(&r.target),
                r.verdict.word()
            );
        }
        t
    }

    /// The whole report as Markdown; `svg` is the picture's file name, linked from it.
    pub fn markdown(&self, svg: Option<&str>) -> String {
        let mut m = String::from("# zonemon benchmark results\n\n");
        for (k, v) in &self.header {
            let _ = writeln!(m, "- **{k}**: {v}");
        }
        m.push('\n');
        m.push_str(&self.table());
        if let Some(svg) = svg {
            let _ = writeln!(
                m,
                "\n![detection latency and completeness under churn]({svg})"
            );
        }
        if !self.notes.is_empty() {
            m.push_str("\nNotes:\n\n");
            for n in &self.notes {
                let _ = writeln!(m, "- {n}");
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_have_five_cells_and_no_stray_pipes() {
        let mut r = Report::default();
        r.row("a|b", "1 ms", "2 ms", "≤ 1 ms", Verdict::Miss);
        let t = r.table();
        let line = t.lines().nth(2).unwrap();
        assert_eq!(line, "| a/b | 1 ms | 2 ms | ≤ 1 ms | MISS |");
        assert!(r.markdown(Some("x.svg")).contains("![detection latency"));
    }
}
