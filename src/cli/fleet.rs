//! `kubectl meshup fleet`: every selected cluster read at most `--concurrency` at a time, each within
//! `--cluster-timeout`: its published report (one GET), else a live check; one row each
//! ([`crate::fleet`]); exit 3 when any cluster blocks.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::args::{FleetArgs, GlobalArgs, OutputFormat};
use super::{clock, connection_options, load_compat};
use crate::client::{ClusterError, ConnectedCluster, classify, connect_each};
use crate::compat::CompatData;
use crate::error::{Error, Exit};
use crate::fleet::{FleetReport, FleetRow, Judged, Source, Status};
use crate::observe::{ObserveOptions, observe};
use crate::output::{DocFormat, render, write_stdout};
use crate::plan::PlanRequest;

/// What every cluster's read shares.
struct Shared<'a> {
    compat: &'a CompatData,
    request: &'a PlanRequest,
    observe: ObserveOptions,
    namespace: &'a str,
    max_age: Duration,
    timeout: Duration,
    today: String,
}

pub async fn run(
    global: &GlobalArgs,
    args: &FleetArgs,
    format: OutputFormat,
) -> Result<Exit, Error> {
    let compat = load_compat(global)?;
    let mut opts = connection_options(global);
    if let Some(path) = &args.contexts_file {
        opts.contexts.extend(read_contexts_file(path)?);
    }
    let request = super::plan::plan_request(&args.request)?;
    let shared = Shared {
        compat: &compat,
        request: &request,
        observe: ObserveOptions {
            istio_namespace: global.istio_namespace.clone(),
        },
        namespace: &args.report_namespace,
        max_age: args.max_report_age,
        timeout: args.cluster_timeout,
        today: args.date.clone().unwrap_or_else(clock::today_utc),
    };
    let targets = connect_each(&opts).await?;
    let shared = &shared;
    let mut rows: Vec<(usize, Result<FleetRow, crate::plan::PlanError>)> = futures::stream::iter(
        targets
            .into_iter()
            .enumerate()
            .map(|(i, (context, target))| async move { (i, row(shared, &context, target).await) }),
    )
    .buffer_unordered(usize::from(args.concurrency))
    .collect()
    .await;
    rows.sort_by_key(|(i, _)| *i);
    let mut clusters = Vec::with_capacity(rows.len());
    for (_, row) in rows {
        clusters.push(row?);
    }
    let report = FleetReport::new(&request.targets, args.max_report_age.as_secs(), clusters);
    let text = match format {
        OutputFormat::Json => render(&report, DocFormat::Json)?,
        OutputFormat::Yaml => render(&report, DocFormat::Yaml)?,
        _ => crate::fleet::render_table(&report),
    };
    write_stdout(&text)?;
    Ok(if report.blocks() {
        Exit::Blocking
    } else {
        Exit::Ok
    })
}

/// Context names, one a line; blank lines and `#` comments skipped.
fn read_contexts_file(path: &std::path::Path) -> Result<Vec<String>, Error> {
    let text = crate::limits::read_file(
        path,
        crate::limits::max_file_bytes(),
        crate::limits::MAX_FILE_ENV,
    )
    .map_err(|e| Error::ContextsFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn status_of(e: &ClusterError) -> Status {
    match e {
        ClusterError::Unreachable { .. } | ClusterError::Tls { .. } => Status::Unreachable,
        ClusterError::Unauthorized { .. }
        | ClusterError::Credentials { .. }
        | ClusterError::CredentialFile { .. }
        | ClusterError::CredentialLimit { .. } => Status::Unauthorized,
        ClusterError::Forbidden { .. } => Status::Forbidden,
        _ => Status::Failed,
    }
}

fn unjudged(context: &str, server: Option<String>, e: &ClusterError) -> FleetRow {
    FleetRow::unjudged(context, server, status_of(e), e.to_string())
}

/// One cluster's row, within the cluster timeout. `Err` only for a target no cluster can plan.
async fn row(
    shared: &Shared<'_>,
    context: &str,
    target: Result<ConnectedCluster, ClusterError>,
) -> Result<FleetRow, crate::plan::PlanError> {
    let target = match target {
        Ok(t) => t,
        Err(e) => return Ok(unjudged(context, None, &e)),
    };
    match tokio::time::timeout(shared.timeout, judge(shared, &target)).await {
        Ok(row) => row,
        Err(_) => Ok(FleetRow::unjudged(
            context,
            Some(target.server.clone()),
            Status::Unreachable,
            format!(
                "no answer from {} within {} (--cluster-timeout)",
                target.address(),
                crate::limits::duration(shared.timeout)
            ),
        )),
    }
}

async fn judge(
    shared: &Shared<'_>,
    target: &ConnectedCluster,
) -> Result<FleetRow, crate::plan::PlanError> {
    let context = target.context.as_str();
    let server = Some(target.server.clone());
    let api: Api<ConfigMap> = Api::namespaced(target.client.clone(), shared.namespace);
    let what = format!("ConfigMap {}/{}", shared.namespace, crate::publish::NAME);
    let live_because = match api.get_opt(crate::publish::NAME).await {
        Err(e) => {
            let e = classify(context, &target.address(), &what, e);
            match status_of(&e) {
                Status::Failed => format!("the published report could not be read: {e}"),
                _ => return Ok(unjudged(context, server, &e)),
            }
        }
        Ok(None) => format!("no report published ({what} not found)"),
        Ok(Some(cm)) => match crate::publish::read(&cm) {
            Err(reason) => format!("the published report is unusable: {reason}"),
            Ok(published) => {
                let age = published
                    .checked_at
                    .as_deref()
                    .and_then(clock::seconds_since);
                match (age, &published.snapshot) {
                    (None, _) => "the published report has no readable time".to_string(),
                    (Some(age), _) if age > shared.max_age.as_secs() => format!(
                        "the published report is {} old (--max-report-age {})",
                        crate::fleet::age(age),
                        crate::fleet::age(shared.max_age.as_secs())
                    ),
                    (Some(_), None) => {
                        "the published report carries no snapshot (left out for size)".to_string()
                    }
                    (Some(age), Some(snapshot)) => {
                        return crate::fleet::judge(
                            Judged {
                                context,
                                server,
                                snapshot,
                                report: &published.report,
                                source: Source::Published,
                                live_because: None,
                                checked_at: published.checked_at.clone(),
                                report_age_seconds: Some(age),
                            },
                            shared.compat,
                            shared.request,
                        );
                    }
                }
            }
        },
    };
    tracing::info!(context, reason = %live_because, "checking live");
    let mut snapshot = match observe(std::slice::from_ref(target), &shared.observe).await {
        Ok(s) => s,
        Err(e) => return Ok(unjudged(context, server, &e)),
    };
    let checked_at = clock::now_rfc3339();
    snapshot.observed_at = Some(checked_at.clone());
    let report = crate::check::check(&snapshot, shared.compat, &shared.today);
    crate::fleet::judge(
        Judged {
            context,
            server,
            snapshot: &snapshot,
            report: &report,
            source: Source::Live,
            live_because: Some(live_because),
            checked_at: Some(checked_at),
            report_age_seconds: None,
        },
        shared.compat,
        shared.request,
    )
}
