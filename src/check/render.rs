//! STAND-IN on branch `cli` only (see `check/mod.rs`): the real table renderer comes from branch `check`.

use crate::report::CheckReport;

pub fn render_table(report: &CheckReport, _colour: bool) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            f.severity.as_str(),
            f.cluster,
            f.subject,
            f.message
        ));
    }
    out.push_str(&format!(
        "{} fail, {} warn, {} info, {} pass\n",
        report.summary.fail, report.summary.warn, report.summary.info, report.summary.pass
    ));
    out
}
