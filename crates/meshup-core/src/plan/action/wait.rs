//! `wait`: wait for a condition (a rollout, resources that come back), failing after the timeout.

use super::ActionKind;
use crate::plan::describe::object;
use crate::plan::model::{Action, WaitCondition};
use crate::plan::scope::{Checked, Cx, is_discovery_group};

pub struct Wait<'a> {
    /// The action, for its description.
    pub whole: &'a Action,
    pub condition: &'a WaitCondition,
    pub timeout_seconds: u64,
}

impl<'a> ActionKind<'a> for Wait<'a> {
    fn type_name(&self) -> &'static str {
        "wait"
    }

    fn describe(&self, _: Option<u32>) -> String {
        let timeout_seconds = self.timeout_seconds;
        match self.condition {
            WaitCondition::RolloutComplete { target } => {
                format!(
                    "wait for {} to roll out (up to {timeout_seconds}s)",
                    object(target)
                )
            }
            WaitCondition::ResourcesPresent {
                group, resources, ..
            } => format!(
                "wait until {} of {group} exist again (up to {timeout_seconds}s)",
                resources.join(", ")
            ),
        }
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        match self.condition {
            WaitCondition::RolloutComplete { target } => {
                if !matches!(
                    target.kind.as_str(),
                    "Deployment" | "StatefulSet" | "DaemonSet"
                ) {
                    return Err(format!("waits for a {}, not a workload", target.kind));
                }
                cx.mesh_namespace(&target.namespace, "waits for a rollout")
            }
            WaitCondition::ResourcesPresent { group, .. } => {
                if is_discovery_group(group) {
                    Ok(())
                } else {
                    Err(format!(
                        "waits for resources of {group}, not a Gloo Mesh discovery group"
                    ))
                }
            }
        }
    }
}
