//! The picture: detection latency as cumulative distributions (log time axis)
//! next to completeness under churn as grouped bars, in one hand-written SVG.

use std::fmt::Write as _;

use crate::table::{ChurnGroup, Curve};

const COLORS: [&str; 6] = [
    "#1b7837", "#2166ac", "#d6604d", "#b2182b", "#762a83", "#999999",
];
const W: f64 = 980.0;
const H: f64 = 500.0;

/// A stable color per source label.
fn color(label: &str, labels: &[String]) -> &'static str {
    let i = labels
        .iter()
        .position(|l| l == label)
        .unwrap_or(labels.len());
    COLORS[i % COLORS.len()]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Draws both panels; `title` goes on top.
pub fn draw(title: &str, latency: &[Curve], churn: &[ChurnGroup]) -> String {
    let mut labels: Vec<String> = latency.iter().map(|c| c.label.clone()).collect();
    for g in churn {
        for (l, _) in &g.shares {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    latency_panel(&mut s, latency, &labels, 70.0, 60.0, 400.0, 300.0);
    churn_panel(&mut s, churn, &labels, 560.0, 60.0, 400.0, 300.0);
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, x: f64, y: f64, w: f64, h: f64, title: &str, ylabel: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
        x + w / 2.0,
        y - 8.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="#333"/>"##
    );
    for k in 0..=4 {
        let yy = y + h - h * k as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/>"##,
            x + w
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}%</text>"#,
            x - 4.0,
            yy + 4.0,
            k * 25
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        x - 40.0,
        y + h / 2.0,
        x - 40.0,
        y + h / 2.0,
        esc(ylabel)
    );
}

fn latency_panel(
    s: &mut String,
    curves: &[Curve],
    labels: &[String],
    x: f64,
    y: f64,
    w: f64,
    h: f64,
) {
    axes(
        s,
        x,
        y,
        w,
        h,
        "Detection latency (kernel timestamp → line read)",
        "share of transitions seen by then",
    );
    let all: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.ns.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e3)
        .log10()
        .floor()
        .min(4.0);
    let hi = all
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(1e7)
        .log10()
        .ceil()
        .min(11.0);
    let xs = |ns: f64| x + w * ((ns.max(10f64.powf(lo)).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
    for e in lo as i32..=hi as i32 {
        let xx = xs(10f64.powi(e));
        let label = match e {
            3 => "1 µs".to_string(),
            4 => "10 µs".into(),
            5 => "100 µs".into(),
            6 => "1 ms".into(),
            7 => "10 ms".into(),
            8 => "100 ms".into(),
            9 => "1 s".into(),
            10 => "10 s".into(),
            _ => format!("1e{e} ns"),
        };
        let _ = writeln!(
            s,
            r##"<line x1="{xx}" y1="{y}" x2="{xx}" y2="{}" stroke="#eee"/>"##,
            y + h
        );
        let _ = writeln!(
            s,
            r#"<text x="{xx}" y="{}" text-anchor="middle">{label}</text>"#,
            y + h + 16.0
        );
    }
    let t = xs(1e6);
    let _ = writeln!(
        s,
        r##"<line x1="{t}" y1="{y}" x2="{t}" y2="{}" stroke="#b2182b" stroke-dasharray="4 3"/>"##,
        y + h
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#b2182b">1 ms (p99 target)</text>"##,
        t + 4.0,
        y + h - 6.0
    );
    for (k, c) in curves.iter().enumerate() {
        let mut v: Vec<f64> = c.ns.iter().map(|n| n.max(1.0)).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let col = color(&c.label, labels);
        let ly = y + h + 36.0 + 16.0 * k as f64;
        let p99 = crate::stats::percentile(&v, 99.0)
            .map(crate::stats::fmt_ns)
            .unwrap_or_else(|| "no samples".into());
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="4" fill="{col}"/>"#,
            ly - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{ly}">{} (n={}, p99 {})</text>"#,
            x + 18.0,
            esc(&c.label),
            v.len(),
            esc(&p99)
        );
        if v.is_empty() {
            continue;
        }
        let n = v.len();
        let step = (n / 400).max(1);
        let mut d = format!("M {:.1} {:.1}", xs(v[0]), y + h);
        for i in (0..n).step_by(step).chain(std::iter::once(n - 1)) {
            let yy = y + h - h * (i + 1) as f64 / n as f64;
            let _ = write!(d, " L {:.1} {:.1}", xs(v[i]), yy);
        }
        let _ = writeln!(
            s,
            r#"<path d="{d}" fill="none" stroke="{col}" stroke-width="2"/>"#
        );
    }
}

fn churn_panel(
    s: &mut String,
    groups: &[ChurnGroup],
    labels: &[String],
    x: f64,
    y: f64,
    w: f64,
    h: f64,
) {
    axes(
        s,
        x,
        y,
        w,
        h,
        "Completeness under churn (boots+shutdowns seen)",
        "share seen",
    );
    if groups.is_empty() {
        return;
    }
    let gw = w / groups.len() as f64;
    for (gi, g) in groups.iter().enumerate() {
        let gx = x + gi as f64 * gw;
        let n = g.shares.len().max(1) as f64;
        let bw = (gw - 20.0) / n;
        for (bi, (label, share)) in g.shares.iter().enumerate() {
            let bx = gx + 10.0 + bi as f64 * bw;
            let col = color(label, labels);
            match share {
                Some(p) => {
                    let bh = h * p.clamp(0.0, 100.0) / 100.0;
                    let _ = writeln!(
                        s,
                        r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{col}"/>"#,
                        y + h - bh,
                        bw - 2.0
                    );
                    // Inside the bar (white) when it reaches the top, above it otherwise.
                    let text = if *p >= 99.95 {
                        "100".to_string()
                    } else {
                        format!("{p:.1}")
                    };
                    let (ty, fill) = if *p > 90.0 {
                        (y + h - bh + 12.0, "white")
                    } else {
                        (y + h - bh - 3.0, "black")
                    };
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{ty:.1}" text-anchor="middle" font-size="10" fill="{fill}">{text}</text>"#,
                        bx + bw / 2.0,
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#777">n/a</text>"##,
                        bx + bw / 2.0,
                        y + h - 3.0
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{} at a time</text>"#,
            gx + gw / 2.0,
            y + h + 16.0,
            g.parallel
        );
    }
    let mut legend: Vec<&String> = Vec::new();
    for g in groups {
        for (l, _) in &g.shares {
            if !legend.contains(&l) {
                legend.push(l);
            }
        }
    }
    for (k, l) in legend.iter().enumerate() {
        let ly = y + h + 36.0 + 16.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="8" fill="{}"/>"#,
            ly - 8.0,
            color(l, labels)
        );
        let _ = writeln!(s, r#"<text x="{}" y="{ly}">{}</text>"#, x + 18.0, esc(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_well_formed_svg() {
        let c = vec![
            Curve {
                label: "eBPF".into(),
                ns: vec![5e4, 6e4, 2e6],
            },
            Curve {
                label: "poll 1 s".into(),
                ns: vec![],
            },
        ];
        let g = vec![ChurnGroup {
            parallel: 8,
            shares: vec![("eBPF".into(), Some(100.0)), ("poll 1 s".into(), None)],
        }];
        let svg = draw("t <x>", &c, &g);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;x&gt;") && svg.contains("n/a") && svg.contains("8 at a time"));
        assert_eq!(svg.matches("<path").count(), 1);
    }
}
