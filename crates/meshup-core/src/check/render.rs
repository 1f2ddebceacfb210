//! The `-o table` rendering of a `CheckReport`: grouped by cluster, then by mesh or area, failures
//! first, one entry per finding (wrapped at 100 columns), the sources of failures and warnings as
//! numbered footnotes, and a summary line. JSON and YAML carry every source on every finding.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{CheckReport, Finding, Severity};

/// The terminal width the table is laid out for.
const WIDTH: usize = 100;
/// Where a finding's text starts: after `    FAIL  `.
const TEXT_INDENT: usize = 10;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const CYAN: &str = "\x1b[36m";
const GREEN: &str = "\x1b[32m";

/// Renders the report as a table for a terminal; ANSI colour only when `colour` is true.
pub fn render_table(report: &CheckReport, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    let mut footnotes = Footnotes::default();
    let _ = writeln!(
        out,
        "{}",
        paint.apply(
            DIM,
            &format!(
                "Checked {} against compatibility data dated {}{}, as of {}",
                plural(report.clusters.len(), "cluster", "clusters"),
                report.compat_data,
                report
                    .compat_data_from
                    .as_ref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default(),
                report.evaluated_at
            )
        )
    );
    for w in &report.compat_data_warnings {
        let _ = writeln!(out, "{}", paint.apply(YELLOW, &format!("warning: {w}")));
    }
    for cluster in cluster_order(report) {
        let findings: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.cluster == cluster)
            .collect();
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", paint.apply(BOLD, &format!("cluster {cluster}")));
        if findings.is_empty() {
            let _ = writeln!(out, "  nothing to judge");
            continue;
        }
        for (area, mut in_area) in areas(&findings) {
            in_area.sort_by_key(|f| std::cmp::Reverse(f.severity));
            let _ = writeln!(out, "  {}", paint.apply(BOLD, area));
            for f in in_area {
                write_finding(&mut out, f, &paint, &mut footnotes);
            }
        }
    }
    if !footnotes.sources.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", paint.apply(BOLD, "Sources"));
        for (i, source) in footnotes.sources.iter().enumerate() {
            let marker = format!("[{}]", i + 1);
            let lines = wrap(source, WIDTH - 7);
            for (n, line) in lines.iter().enumerate() {
                let lead = if n == 0 {
                    format!("  {marker:<5}")
                } else {
                    " ".repeat(7)
                };
                let _ = writeln!(out, "{lead}{}", paint.apply(DIM, line));
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}, {}, {}, {}",
        paint.apply_if(s.fail > 0, RED, &format!("{} failed", s.fail)),
        paint.apply_if(s.warn > 0, YELLOW, &plural(s.warn, "warning", "warnings")),
        format_args!("{} info", s.info),
        paint.apply_if(s.pass > 0, GREEN, &format!("{} passed", s.pass)),
    );
    out
}

/// Clusters in the report's order, then any a finding names that the list lacks.
fn cluster_order(report: &CheckReport) -> Vec<&str> {
    let mut order: Vec<&str> = report.clusters.iter().map(String::as_str).collect();
    for f in &report.findings {
        if !order.contains(&f.cluster.as_str()) {
            order.push(&f.cluster);
        }
    }
    order
}

/// Findings grouped by area (the rule id's prefix), the area with the worst finding first.
fn areas<'a>(findings: &[&'a Finding]) -> Vec<(&'static str, Vec<&'a Finding>)> {
    let mut by_area: BTreeMap<(usize, &'static str), Vec<&'a Finding>> = BTreeMap::new();
    for f in findings {
        by_area.entry(area_of(&f.rule)).or_default().push(f);
    }
    let mut areas: Vec<(Severity, usize, &'static str, Vec<&'a Finding>)> = by_area
        .into_iter()
        .map(|((rank, name), fs)| {
            let worst = fs
                .iter()
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Pass);
            (worst, rank, name, fs)
        })
        .collect();
    areas.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    areas
        .into_iter()
        .map(|(_, _, name, fs)| (name, fs))
        .collect()
}

/// The area heading for a rule id, with its rank among areas of equal severity.
fn area_of(rule: &str) -> (usize, &'static str) {
    match rule.split('.').next().unwrap_or(rule) {
        "snapshot" => (0, "Snapshot"),
        "istio" => (1, "Istio"),
        "gloo-mesh" => (2, "Gloo Mesh"),
        "kmesh" => (3, "Kmesh"),
        _ => (4, "Other"),
    }
}

fn write_finding(out: &mut String, f: &Finding, paint: &Paint, footnotes: &mut Footnotes) {
    let (label, style) = match f.severity {
        Severity::Fail => ("FAIL", RED),
        Severity::Warn => ("WARN", YELLOW),
        Severity::Info => ("info", CYAN),
        Severity::Pass => ("pass", GREEN),
    };
    let note = match f.severity {
        Severity::Fail | Severity::Warn => format!(" [{}]", footnotes.number(&f.source)),
        Severity::Info | Severity::Pass => String::new(),
    };
    // Wrap the plain text, then colour the subject (always on the first line) and the footnote.
    let text = format!("{}: {}{note}", f.subject, f.message);
    let lines = wrap(&text, WIDTH - TEXT_INDENT);
    for (n, line) in lines.iter().enumerate() {
        let mut line = line.clone();
        if n == 0 && line.starts_with(&f.subject) {
            let rest = line[f.subject.len()..].to_string();
            line = format!("{}{rest}", paint.apply(BOLD, &f.subject));
        }
        if n + 1 == lines.len() && !note.is_empty() && line.ends_with(note.trim_start()) {
            let cut = line.len() - note.trim_start().len();
            line = format!("{}{}", &line[..cut], paint.apply(DIM, note.trim_start()));
        }
        if n == 0 {
            let _ = writeln!(out, "    {}  {line}", paint.apply(style, label));
        } else {
            let _ = writeln!(out, "{}{line}", " ".repeat(TEXT_INDENT));
        }
    }
}

/// Sources of failures and warnings, numbered in order of first use.
#[derive(Default)]
struct Footnotes {
    sources: Vec<String>,
}

impl Footnotes {
    fn number(&mut self, source: &str) -> usize {
        match self.sources.iter().position(|s| s == source) {
            Some(i) => i + 1,
            None => {
                self.sources.push(source.to_string());
                self.sources.len()
            }
        }
    }
}

/// Greedy word wrap; a word longer than the width gets a line of its own.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// ANSI styling, or none.
struct Paint(bool);

impl Paint {
    fn apply(&self, style: &str, text: &str) -> String {
        if self.0 {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn apply_if(&self, when: bool, style: &str, text: &str) -> String {
        if when {
            self.apply(style, text)
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_lines_within_the_width() {
        let text = "Istio 1.9 does not support Kubernetes 1.22 (supported: 1.17–1.20); upgrade Istio to a release that supports it";
        for line in wrap(text, 40) {
            assert!(line.chars().count() <= 40, "{line}");
        }
        assert_eq!(wrap(text, 40).join(" "), text);
        assert_eq!(wrap("", 40), vec![String::new()]);
    }
}
