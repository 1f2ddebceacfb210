//! `FleetReport`: one row per cluster of `kubectl meshup fleet`, judged from what each cluster
//! published (`check --publish-configmap`, see [`crate::publish`]) or from a live read. Pure: the
//! rows are built from a snapshot and a report with the planner ([`crate::plan::plan`]), so a target
//! is blocked in the fleet view for exactly the reasons `plan` gives; the IO is in `cli/fleet.rs`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::compat::CompatData;
use crate::plan::{PlanError, PlanRequest, Target};
use crate::report::CheckReport;
use crate::snapshot::{API_VERSION, ClusterSnapshot, MeshVersion};

pub const FLEET_KIND: &str = "FleetReport";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    pub api_version: String,
    pub kind: String,
    /// The `--to` targets each cluster was planned for (`istio=1.24`).
    pub targets: Vec<String>,
    /// Older published reports were not used (`--max-report-age`), in seconds.
    pub max_report_age_seconds: u64,
    pub clusters: Vec<FleetRow>,
}

impl FleetReport {
    pub fn new(targets: &[Target], max_report_age_seconds: u64, clusters: Vec<FleetRow>) -> Self {
        Self {
            api_version: API_VERSION.to_string(),
            kind: FLEET_KIND.to_string(),
            targets: targets.iter().map(target_name).collect(),
            max_report_age_seconds,
            clusters,
        }
    }

    /// True when any cluster blocks: a target it cannot reach, or (without targets) a failure.
    pub fn blocks(&self) -> bool {
        self.clusters.iter().any(|c| c.blocks)
    }
}

/// Whether a cluster could be judged, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unreachable,
    Unauthorized,
    Forbidden,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unreachable => "unreachable",
            Status::Unauthorized => "unauthorized",
            Status::Forbidden => "forbidden",
            Status::Failed => "failed",
        }
    }
}

/// Where a row's facts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The cluster's report ConfigMap, one GET.
    Published,
    /// Read now, as `check` would.
    Live,
}

/// One `--to` target for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetVerdict {
    pub target: String,
    /// `ok` (a plan exists), `blocked`, or `not-installed` (nothing to upgrade here).
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Steps of the plan, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetRow {
    pub context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Why a live read was made instead of using a published report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_because: Option<String>,
    /// For a row that could not be judged: the one-line error, with its fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<String>,
    pub meshes: Vec<MeshVersion>,
    /// The date of the compatibility data the findings were judged with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat_data: Option<String>,
    /// When the facts were read (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_age_seconds: Option<u64>,
    pub fail: usize,
    pub warn: usize,
    pub targets: Vec<TargetVerdict>,
    pub blocks: bool,
}

impl FleetRow {
    /// A cluster that could not be judged.
    pub fn unjudged(context: &str, server: Option<String>, status: Status, reason: String) -> Self {
        Self {
            context: context.to_string(),
            server,
            status,
            source: None,
            live_because: None,
            reason: Some(reason),
            kubernetes: None,
            meshes: Vec::new(),
            compat_data: None,
            checked_at: None,
            report_age_seconds: None,
            fail: 0,
            warn: 0,
            targets: Vec::new(),
            blocks: false,
        }
    }
}

/// What one cluster's facts say, for the row.
pub struct Judged<'a> {
    pub context: &'a str,
    pub server: Option<String>,
    /// The cluster's snapshot (one cluster; its name is replaced by `context`).
    pub snapshot: &'a ClusterSnapshot,
    /// The check of that snapshot (published, or made now).
    pub report: &'a CheckReport,
    pub source: Source,
    pub live_because: Option<String>,
    pub checked_at: Option<String>,
    pub report_age_seconds: Option<u64>,
}

fn target_name(t: &Target) -> String {
    format!("{}={}", t.mesh, t.version)
}

/// A planning error that is the request's, not a cluster's: the whole run is a usage error.
fn is_request_error(e: &PlanError) -> bool {
    matches!(
        e,
        PlanError::NoTargets | PlanError::DuplicateTarget { .. } | PlanError::UnknownVersion { .. }
    )
}

/// The row of a judged cluster: versions, counts, and each target planned on its own. `Err` when a
/// target cannot be planned anywhere (an unknown version): a usage error for the run.
pub fn judge(
    j: Judged<'_>,
    compat: &CompatData,
    request: &PlanRequest,
) -> Result<FleetRow, PlanError> {
    let mut snapshot = j.snapshot.clone();
    for c in &mut snapshot.clusters {
        c.name = j.context.to_string();
    }
    let cluster = snapshot.clusters.first();
    let mut targets = Vec::new();
    for t in &request.targets {
        let one = PlanRequest {
            // Not `*t`: a target may stop being Copy (flavors).
            targets: std::slice::from_ref(t).to_vec(),
            ..request.clone()
        };
        let verdict = match crate::plan::plan(&snapshot, compat, &one) {
            Ok(plan) => TargetVerdict {
                target: target_name(t),
                verdict: "ok",
                reason: None,
                steps: Some(plan.steps.len()),
            },
            Err(PlanError::MeshNotInstalled { .. }) => TargetVerdict {
                target: target_name(t),
                verdict: "not-installed",
                reason: None,
                steps: None,
            },
            Err(e) if is_request_error(&e) => return Err(e),
            Err(e) => TargetVerdict {
                target: target_name(t),
                verdict: "blocked",
                // The planner names the cluster first; the row already does.
                reason: Some({
                    let text = e.to_string();
                    text.strip_prefix(&format!("{}: ", j.context))
                        .map(str::to_string)
                        .unwrap_or(text)
                }),
                steps: None,
            },
        };
        targets.push(verdict);
    }
    let blocks = if request.targets.is_empty() {
        j.report.has_failures()
    } else {
        targets.iter().any(|t| t.verdict == "blocked")
    };
    Ok(FleetRow {
        context: j.context.to_string(),
        server: j.server,
        status: Status::Ok,
        source: Some(j.source),
        live_because: j.live_because,
        reason: None,
        kubernetes: cluster.map(|c| c.kubernetes.git_version.clone()),
        meshes: cluster.map(|c| c.mesh_versions()).unwrap_or_default(),
        compat_data: Some(j.report.compat_data.clone()),
        checked_at: j.checked_at,
        report_age_seconds: j.report_age_seconds,
        fail: j.report.summary.fail,
        warn: j.report.summary.warn,
        targets,
        blocks,
    })
}

/// `45s`, `12m`, `5h10m`, `3d4h`.
pub fn age(seconds: u64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{seconds}s")
    }
}

/// The table: one row per cluster, then the reasons (blocked targets, unjudged clusters) below it.
pub fn render_table(report: &FleetReport) -> String {
    let mut header = vec![
        "CONTEXT",
        "STATUS",
        "SOURCE",
        "KUBERNETES",
        "MESHES",
        "DATA",
        "AGE",
        "FAIL",
        "WARN",
    ];
    if !report.targets.is_empty() {
        header.push("TARGETS");
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    let mut notes = Vec::new();
    for c in &report.clusters {
        let dash = || "-".to_string();
        let meshes = if c.meshes.is_empty() {
            if c.status == Status::Ok {
                "none".to_string()
            } else {
                dash()
            }
        } else {
            c.meshes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ok = c.status == Status::Ok;
        let mut row = vec![
            c.context.clone(),
            c.status.as_str().to_string(),
            match c.source {
                Some(Source::Published) => "published".to_string(),
                Some(Source::Live) => "live".to_string(),
                None => dash(),
            },
            c.kubernetes.clone().unwrap_or_else(dash),
            meshes,
            c.compat_data.clone().unwrap_or_else(dash),
            c.report_age_seconds.map(age).unwrap_or_else(dash),
            if ok { c.fail.to_string() } else { dash() },
            if ok { c.warn.to_string() } else { dash() },
        ];
        if !report.targets.is_empty() {
            row.push(if ok {
                c.targets
                    .iter()
                    .map(|t| format!("{} {}", t.target, t.verdict))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                dash()
            });
        }
        // Cells come from kubeconfigs and from what clusters published: shown, never obeyed.
        rows.push(
            row.into_iter()
                .map(|cell| crate::text::escape_control(&cell).into_owned())
                .collect(),
        );
        if let Some(reason) = &c.reason {
            notes.push(format!("{}: {reason}", c.context));
        }
        if let Some(why) = &c.live_because {
            notes.push(format!("{}: read live: {why}", c.context));
        }
        for t in &c.targets {
            if let Some(reason) = &t.reason {
                notes.push(format!("{}: {} blocked: {reason}", c.context, t.target));
            }
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&crate::text::escape_control(&n));
            out.push('\n');
        }
    }
    let blocking = report.clusters.iter().filter(|c| c.blocks).count();
    let unjudged = report
        .clusters
        .iter()
        .filter(|c| c.status != Status::Ok)
        .count();
    let _ = writeln!(
        out,
        "\n{} clusters: {blocking} {}, {unjudged} could not be judged",
        report.clusters.len(),
        if report.targets.is_empty() {
            "with failures"
        } else {
            "block a target"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(12 * 60 + 5), "12m");
        assert_eq!(age(5 * 3600 + 600), "5h10m");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3d4h");
    }
}
