//! `plan`: turns a snapshot and targets into an ordered `UpgradePlan`. Pure: no IO, no clock, no
//! environment. The CLI wires it as `kubectl meshup plan`; `apply` executes the result.
//!
//! - [`plan()`] builds a plan (or says why none is allowed: [`PlanError`]);
//! - [`fingerprint()`] / [`fingerprint_diff`] tell `apply` whether the cluster drifted from the plan;
//! - [`to_yaml`], [`to_json`], [`load`] write and read plan files, sealed by an integrity hash;
//! - [`render_table`] and [`render_markdown`] show a plan to people.

pub mod action;
mod describe;
mod error;
mod file;
mod fingerprint;
mod install_method;
mod istio_install;
mod model;
mod notes;
mod paths;
mod planner;
mod render;
mod runbooks;
mod scope;
mod steps;

pub use describe::{carried_config, command_line, describe_action, tool_version_command};
pub use error::{PlanError, PlanErrorKind};
pub use file::{
    MAX_REPLICAS, MAX_TIMEOUT_SECONDS, PlanFileError, check_limits, integrity_of, load, to_json,
    to_yaml,
};
pub use fingerprint::{
    FactChange, fingerprint, fingerprint_diff, recorded_server, server_identity,
};
pub use model::*;
pub use render::{APPLY_COMMAND, render_markdown, render_table};
pub use scope::{
    ALLOWED_LABELS, ScopeViolation, allowed_chart_repo, check_scope, scope_violations,
};

use crate::compat::CompatData;
use crate::snapshot::ClusterSnapshot;

/// What the user asked `kubectl meshup plan` for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanRequest {
    /// One per mesh: `--to istio=1.24`, `--to gloo-mesh=1.1`, `--to kmesh=1.1`.
    pub targets: Vec<Target>,
    /// Istio's method (`--strategy`), canary by default.
    pub strategy: Strategy,
    /// Plan a Kubernetes upgrade as a manual first step when Kubernetes is too old for the target,
    /// instead of refusing.
    pub include_kubernetes_upgrade: bool,
    /// Allow a target older than what is installed (within Istio's downgrade limit; flagged).
    pub allow_downgrade: bool,
    /// The chart repositories the helm steps use (`--chart-repo`; the vendors' by default).
    pub chart_repos: ChartRepos,
    /// The kubectl-meshup version, recorded in the plan.
    pub tool_version: String,
}

/// Plans the upgrade of `snapshot`'s clusters to `request.targets`.
pub fn plan(
    snapshot: &ClusterSnapshot,
    compat: &CompatData,
    request: &PlanRequest,
) -> Result<UpgradePlan, PlanError> {
    planner::plan(snapshot, compat, request)
}

#[cfg(test)]
mod tests;
