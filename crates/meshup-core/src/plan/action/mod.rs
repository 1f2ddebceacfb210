//! One home per plan action, for what the pure core asks of it: its `type` tag, the one line a
//! reviewer reads (plan's renderers, apply's step lines and prompts), the chart repository it takes
//! charts from, and the scope rule `apply` and `plan show` hold it to (see [`super::scope`]). Each
//! kind of [`Action`] is one type here with one `impl ActionKind`, and [`of`] is the one `match` from
//! an action to its kind. No method has a default, so the compiler names every answer a new kind
//! must give.
//!
//! A new action: a variant of `Action` in `model.rs`, a file here and an arm in [`of`]; then, for
//! how it runs, a file in the plugin's `src/apply/action/` and an arm in its `of`.

mod apply_crds;
mod delete_collection;
mod gate;
mod label_namespace;
mod manual;
mod restart_workloads;
mod run;
mod scale;
mod wait;

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

/// The kind of `action`: the one `match` over [`Action`] in the pure core.
pub(super) fn of(action: &Action) -> Box<dyn ActionKind<'_> + '_> {
    match action {
        Action::Scale {
            target,
            replicas,
            replicas_before,
        } => Box::new(scale::Scale {
            target,
            replicas: *replicas,
            replicas_before: *replicas_before,
        }),
        Action::DeleteCollection {
            group,
            version,
            resource,
            namespace,
        } => Box::new(delete_collection::DeleteCollection {
            group,
            version,
            resource,
            namespace: namespace.as_deref(),
        }),
        Action::ApplyCrds {
            chart,
            repo,
            version,
        } => Box::new(apply_crds::ApplyCrds {
            chart,
            repo,
            version,
        }),
        Action::Run {
            tool, args, config, ..
        } => Box::new(run::Run {
            tool: *tool,
            args,
            config: config.as_ref(),
        }),
        Action::Wait {
            condition,
            timeout_seconds,
        } => Box::new(wait::Wait {
            condition,
            timeout_seconds: *timeout_seconds,
        }),
        Action::LabelNamespace { namespace, labels } => {
            Box::new(label_namespace::LabelNamespace { namespace, labels })
        }
        Action::RestartWorkloads {
            namespace,
            workloads,
        } => Box::new(restart_workloads::RestartWorkloads {
            namespace,
            workloads,
        }),
        Action::Gate { gate } => Box::new(gate::GateStep { gate }),
        Action::Manual {
            instructions,
            command,
        } => Box::new(manual::Manual {
            instructions,
            command: command.as_deref(),
        }),
    }
}
