//! `kubectl meshup check`: observe (or read a snapshot), judge, render; exit 3 on failures.

use super::args::{CheckArgs, GlobalArgs, OutputFormat};
use super::{Settings, clock, load_compat, observe_clusters, read_snapshot};
use crate::error::{Error, Exit};
use crate::output::{DocFormat, render, write_stderr_line, write_stdout};
use crate::report::CheckReport;
use crate::snapshot::ClusterSnapshot;

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
    let unread = unread_facts(&snapshot);
    if args.fail_on_unread && !unread.is_empty() {
        write_stderr_line(&format!(
            "--fail-on-unread: {} could not be read ({}); exit 3 — grant read access and check again",
            if unread.len() == 1 {
                "1 fact".to_string()
            } else {
                format!("{} facts", unread.len())
            },
            unread.join("; ")
        ));
    }
    Ok(exit_for(&report, args.fail_on_unread && !unread.is_empty()))
}

/// `pods in all namespaces in context prod`, for each fact observe could not read.
fn unread_facts(snapshot: &ClusterSnapshot) -> Vec<String> {
    snapshot
        .clusters
        .iter()
        .flat_map(|c| {
            c.unread
                .iter()
                .map(move |u| format!("{} in context {}", u.what, c.name))
        })
        .collect()
}

/// Failures block (exit 3), and so does an unread fact under `--fail-on-unread`; anything else is a
/// successful check.
fn exit_for(report: &CheckReport, unread_blocks: bool) -> Exit {
    if report.has_failures() || unread_blocks {
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
                rule: crate::check::Rule::IstioK8sSupport.id().into(),
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
        assert_eq!(exit_for(&report(&[]), false), Exit::Ok);
        assert_eq!(
            exit_for(&report(&[Severity::Warn, Severity::Info]), false),
            Exit::Ok
        );
        assert_eq!(
            exit_for(&report(&[Severity::Pass, Severity::Fail]), false),
            Exit::Blocking
        );
    }

    #[test]
    fn unread_facts_block_only_when_asked() {
        assert_eq!(exit_for(&report(&[Severity::Warn]), true), Exit::Blocking);
        assert_eq!(exit_for(&report(&[Severity::Pass]), true), Exit::Blocking);
    }
}
