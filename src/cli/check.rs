//! `kubectl meshup check`: observe (or read a snapshot), judge, render; exit 3 on failures.

use super::args::{CheckArgs, GlobalArgs, OutputFormat};
use super::{Settings, clock, load_compat, observe_clusters, read_snapshot};
use crate::error::{Error, Exit};
use crate::output::{DocFormat, render, write_stdout};
use crate::report::CheckReport;

pub async fn run(
    global: &GlobalArgs,
    args: &CheckArgs,
    format: OutputFormat,
    settings: &Settings,
) -> Result<Exit, Error> {
    let compat = load_compat(global)?;
    let snapshot = match &args.snapshot {
        Some(path) => read_snapshot(path)?,
        None => observe_clusters(global).await?,
    };
    let today = args.date.clone().unwrap_or_else(clock::today_utc);
    let report = crate::check::check(&snapshot, &compat, &today);
    let text = match format {
        OutputFormat::Json => render(&report, DocFormat::Json)?,
        OutputFormat::Yaml => render(&report, DocFormat::Yaml)?,
        _ => crate::check::render::render_table(&report, settings.colour),
    };
    write_stdout(&text)?;
    Ok(exit_for(&report))
}

/// Failures block (exit 3); anything else is a successful check.
fn exit_for(report: &CheckReport) -> Exit {
    if report.has_failures() {
        Exit::Blocking
    } else {
        Exit::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, Severity};

    fn report(severities: &[Severity]) -> CheckReport {
        let findings = severities
            .iter()
            .map(|s| Finding {
                rule: "istio.k8s-supported".into(),
                severity: *s,
                cluster: "prod".into(),
                subject: "istiod".into(),
                message: "m".into(),
                source: "s".into(),
            })
            .collect();
        CheckReport::new(
            "2025-06-01".into(),
            "2025-05-01".into(),
            vec!["prod".into()],
            findings,
        )
    }

    #[test]
    fn only_failures_block() {
        assert_eq!(exit_for(&report(&[])), Exit::Ok);
        assert_eq!(
            exit_for(&report(&[Severity::Warn, Severity::Info])),
            Exit::Ok
        );
        assert_eq!(
            exit_for(&report(&[Severity::Pass, Severity::Fail])),
            Exit::Blocking
        );
    }
}
