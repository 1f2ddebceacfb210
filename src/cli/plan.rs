//! `kubectl meshup plan`: observe (or read a snapshot), plan, render; `--out` also writes the plan file
//! (as `terraform plan -out`: the file for `apply`, the human plan on stdout). `plan show FILE`
//! re-renders a saved plan after checking its integrity.

use std::path::Path;

use super::args::{GlobalArgs, OutputFormat, PlanAction, PlanArgs, PlanRequestArgs};
use super::{Settings, clock, load_compat, observe_clusters, read_snapshot};
use crate::error::{Error, Exit};
use crate::output::{write_stderr_line, write_stdout, write_to};
use crate::plan::{self, PlanRequest, UpgradePlan};
use crate::snapshot::ClusterSnapshot;

pub async fn run(
    global: &GlobalArgs,
    args: &PlanArgs,
    format: OutputFormat,
    settings: &Settings,
) -> Result<Exit, Error> {
    if let Some(PlanAction::Show { file }) = &args.action {
        return show(file, format, settings);
    }
    let snapshot = match &args.snapshot {
        Some(path) => read_snapshot(path)?,
        None => observe_clusters(global).await?,
    };
    let plan = make_plan(global, &args.request, &snapshot)?;
    if let Some(out) = &args.out {
        let file_text = if format == OutputFormat::Json || has_extension(out, "json") {
            plan::to_json(&plan)
        } else {
            plan::to_yaml(&plan)
        };
        write_to(&file_text, Some(out))?;
        // The file is for apply; stdout shows the plan to the person (markdown if asked, else the table).
        let shown = if format == OutputFormat::Markdown {
            OutputFormat::Markdown
        } else {
            OutputFormat::Table
        };
        write_stdout(&render(&plan, shown, settings))?;
        if !plan.steps.is_empty() {
            write_stderr_line(&format!(
                "plan written to {}; review it, then apply it with `kubectl meshup apply {}`",
                out.display(),
                out.display()
            ));
        }
    } else {
        write_stdout(&render(&plan, format, settings))?;
    }
    Ok(Exit::Ok)
}

/// Plans `snapshot` as the flags ask, stamped with the tool version and the time.
pub(super) fn make_plan(
    global: &GlobalArgs,
    request: &PlanRequestArgs,
    snapshot: &ClusterSnapshot,
) -> Result<UpgradePlan, Error> {
    let compat = load_compat(global)?;
    let request = PlanRequest {
        targets: request.to.clone(),
        strategy: request.strategy.map(Into::into).unwrap_or_default(),
        include_kubernetes_upgrade: request.include_kubernetes_upgrade,
        allow_downgrade: request.allow_downgrade,
        chart_repos: request.chart_repos().map_err(Error::Usage)?,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut plan = plan::plan(snapshot, &compat, &request)?;
    plan.metadata.created_at = Some(clock::now_rfc3339());
    Ok(plan)
}

/// The plan in one of the formats `plan` writes.
pub(super) fn render(plan: &UpgradePlan, format: OutputFormat, settings: &Settings) -> String {
    match format {
        OutputFormat::Json => plan::to_json(plan),
        OutputFormat::Yaml => plan::to_yaml(plan),
        OutputFormat::Markdown => plan::render_markdown(plan),
        OutputFormat::Table => plan::render_table(plan, settings.colour),
    }
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Reads and checks a plan file: kind, apiVersion, schema and integrity.
pub(super) fn load_plan(path: &Path) -> Result<UpgradePlan, Error> {
    let shown = path.display().to_string();
    let text = crate::limits::read_file(
        path,
        crate::limits::max_file_bytes(),
        crate::limits::MAX_FILE_ENV,
    )
    .map_err(|e| Error::ReadPlan {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    plan::load(&text).map_err(|source| Error::PlanFile {
        path: shown,
        source,
    })
}

fn show(file: &Path, format: OutputFormat, settings: &Settings) -> Result<Exit, Error> {
    let plan = load_plan(file)?;
    write_stdout(&render(&plan, format, settings))?;
    Ok(Exit::Ok)
}
