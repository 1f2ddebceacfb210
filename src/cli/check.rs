//! `kubectl meshup check`: observe (or read a snapshot), judge, render; exit 3 on failures.

use super::args::{CheckArgs, GlobalArgs, OutputFormat};
use super::{Settings, clock, compat, observe_targets, read_snapshot};
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
    let compat = compat::load(global)?;
    let (targets, snapshot) = match &args.snapshot {
        Some(path) => (Vec::new(), read_snapshot(path)?),
        None => observe_targets(global).await?,
    };
    let today = args.date.clone().unwrap_or_else(clock::today_utc);
    let mut report = crate::check::check(&snapshot, &compat.data, &today);
    report.compat_data_from = Some(compat.origin.clone());
    report.compat_data_warnings = compat.data.freshness_warnings(&today, &snapshot);
    // The check ran to the end here: its metrics say so, whatever it found.
    let metrics = || {
        crate::metrics::encode(&report, &snapshot, clock::unix_seconds()).map_err(|_| {
            Error::Write {
                what: "the metrics".to_string(),
                source: std::io::Error::other("formatting failed"),
            }
        })
    };
    let text = match format {
        OutputFormat::Json => render(&report, DocFormat::Json)?,
        OutputFormat::Yaml => render(&report, DocFormat::Yaml)?,
        OutputFormat::Openmetrics => metrics()?,
        _ => crate::check::render::render_table(&report, settings.colour),
    };
    write_stdout(&text)?;
    if args.publish_configmap {
        publish(&targets, &report, &snapshot).await?;
    }
    if let Some(url) = &args.push_metrics {
        let timeout = match global.request_timeout {
            Some(t) => t.0.unwrap_or(crate::limits::DEFAULT_REQUEST_TIMEOUT),
            None => crate::limits::DEFAULT_REQUEST_TIMEOUT,
        };
        crate::metrics::push(url, &metrics()?, timeout)
            .await
            .map_err(Error::from)?;
        tracing::info!(url = %crate::redact::url(url), "metrics pushed");
    }
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

/// Each cluster's own report into its ConfigMap; every cluster is tried, a failure is one line each
/// and the run fails (exit 1) with the first.
async fn publish(
    targets: &[crate::client::ConnectedCluster],
    report: &CheckReport,
    snapshot: &ClusterSnapshot,
) -> Result<(), Error> {
    let checked_at = snapshot
        .observed_at
        .clone()
        .unwrap_or_else(clock::now_rfc3339);
    let mut first: Option<crate::publish::PublishError> = None;
    for target in targets {
        let (one, snap) = crate::publish::for_cluster(report, snapshot, &target.context);
        let contents =
            crate::publish::contents(&one, &snap, &checked_at, crate::publish::MAX_DATA_BYTES)
                .map_err(crate::publish::PublishError::from)?;
        match crate::publish::publish(target, &contents).await {
            Ok(namespace) => tracing::info!(
                context = %target.context,
                "report published to ConfigMap {namespace}/{}",
                crate::publish::NAME
            ),
            Err(e) if first.is_none() => first = Some(e),
            Err(e) => write_stderr_line(&format!("error: {e}")),
        }
    }
    match first {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
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
