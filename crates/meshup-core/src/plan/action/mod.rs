//! One home per plan action. Each kind of [`Action`] is one type here, a borrowed view of the action
//! ([`Action::kind`] is the one `match` that takes an action apart), with two implementations: here
//! its `impl ActionKind` answers what the pure core asks (its `type` tag, the one line a reviewer
//! reads, the chart repository it takes charts from, the scope rule `apply` and `plan show` hold it
//! to: see [`super::scope`]); in the plugin, its `impl StepAction` in `src/apply/action/` answers
//! how it runs. No method has a default, and no match over kinds has a catch-all, so the compiler
//! names every answer a new kind must give.
//!
//! A new action: a variant of `Action` in `model.rs`, a file here with its type and `impl
//! ActionKind`, an arm in [`Action::kind`], [`Kind`] and [`of`]; then a file in the plugin's
//! `src/apply/action/` and an arm in its `of`.

mod apply_crds;
mod delete_collection;
mod gate;
mod label_namespace;
mod manual;
mod restart_workloads;
mod run;
mod scale;
mod wait;

pub use apply_crds::ApplyCrds;
pub use delete_collection::DeleteCollection;
pub use gate::GateStep;
pub use label_namespace::LabelNamespace;
pub use manual::Manual;
pub use restart_workloads::RestartWorkloads;
pub use run::Run;
pub use scale::Scale;
pub use wait::Wait;

use super::model::Action;
use super::scope::{Checked, Cx};

/// Everything the pure core asks of one kind of action.
/// `'a`: the plan the action is part of (what it answers may borrow from it).
pub(super) trait ActionKind<'a> {
    /// The `type` tag in a plan file, as documented.
    fn type_name(&self) -> &'static str;
    /// One line: `scale Deployment gloo-mesh/discovery 1 -> 0`. `current_replicas`: the live count
    /// when known (apply's scale steps); without it, a scale says where its count comes from.
    fn describe(&self, current_replicas: Option<u32>) -> String;
    /// The chart repository it takes a chart from (a helm run's `--repo URL`, a CRD step's).
    fn chart_repo(&self) -> Option<&'a str>;
    /// Whether it stays inside what the plan may touch on its cluster (`undo`: it is a step's undo).
    fn scope(&self, cx: &Cx<'_>, undo: bool) -> Checked;
}

/// An action as its kind: one borrowed view per kind, each answering the core's questions here
/// ([`ActionKind`]) and the plugin's in its `src/apply/action/` (`StepAction`).
pub enum Kind<'a> {
    Scale(Scale<'a>),
    DeleteCollection(DeleteCollection<'a>),
    ApplyCrds(ApplyCrds<'a>),
    Run(Run<'a>),
    Wait(Wait<'a>),
    LabelNamespace(LabelNamespace<'a>),
    RestartWorkloads(RestartWorkloads<'a>),
    Gate(GateStep<'a>),
    Manual(Manual<'a>),
}

impl Action {
    /// This action as its kind: the one `match` that takes an [`Action`] apart.
    pub fn kind(&self) -> Kind<'_> {
        match self {
            Action::Scale {
                target,
                replicas,
                replicas_before,
            } => Kind::Scale(Scale {
                target,
                replicas: *replicas,
                replicas_before: *replicas_before,
            }),
            Action::DeleteCollection {
                group,
                version,
                resource,
                namespace,
            } => Kind::DeleteCollection(DeleteCollection {
                group,
                version,
                resource,
                namespace: namespace.as_deref(),
            }),
            Action::ApplyCrds {
                chart,
                repo,
                version,
            } => Kind::ApplyCrds(ApplyCrds {
                chart,
                repo,
                version,
            }),
            Action::Run {
                tool,
                args,
                timeout_seconds,
                config,
            } => Kind::Run(Run {
                tool: *tool,
                args,
                timeout_seconds: *timeout_seconds,
                config: config.as_ref(),
            }),
            Action::Wait {
                condition,
                timeout_seconds,
            } => Kind::Wait(Wait {
                whole: self,
                condition,
                timeout_seconds: *timeout_seconds,
            }),
            Action::LabelNamespace { namespace, labels } => {
                Kind::LabelNamespace(LabelNamespace { namespace, labels })
            }
            Action::RestartWorkloads {
                namespace,
                workloads,
            } => Kind::RestartWorkloads(RestartWorkloads {
                namespace,
                workloads,
            }),
            Action::Gate { gate } => Kind::Gate(GateStep { whole: self, gate }),
            Action::Manual {
                instructions,
                command,
            } => Kind::Manual(Manual {
                whole: self,
                instructions,
                command: command.as_deref(),
            }),
        }
    }
}

/// The core's answers for `action`'s kind.
pub(super) fn of(action: &Action) -> Box<dyn ActionKind<'_> + '_> {
    match action.kind() {
        Kind::Scale(k) => Box::new(k),
        Kind::DeleteCollection(k) => Box::new(k),
        Kind::ApplyCrds(k) => Box::new(k),
        Kind::Run(k) => Box::new(k),
        Kind::Wait(k) => Box::new(k),
        Kind::LabelNamespace(k) => Box::new(k),
        Kind::RestartWorkloads(k) => Box::new(k),
        Kind::Gate(k) => Box::new(k),
        Kind::Manual(k) => Box::new(k),
    }
}
