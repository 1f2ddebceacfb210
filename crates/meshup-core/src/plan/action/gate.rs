//! `gate`: a condition the cluster must meet before the plan goes on (proxies at a version, a
//! revision unused, check passes, node kernels, ambient enabled, a tool's version).

use super::ActionKind;
use crate::plan::describe::tool_version_command;
use crate::plan::model::{Action, Gate};
use crate::plan::scope::{Checked, Cx};

pub struct GateStep<'a> {
    /// The action, for its description.
    pub whole: &'a Action,
    pub gate: &'a Gate,
}

impl<'a> ActionKind<'a> for GateStep<'a> {
    fn type_name(&self) -> &'static str {
        "gate"
    }

    fn describe(&self, _: Option<u32>) -> String {
        match self.gate {
            Gate::ProxiesAtVersion {
                version,
                namespaces,
            } => {
                let scope = if namespaces.is_empty() {
                    "all namespaces".to_string()
                } else {
                    namespaces.join(", ")
                };
                format!("gate: every istio-proxy in {scope} runs {version}")
            }
            Gate::RevisionUnused { revision } => {
                format!("gate: nothing uses Istio revision {revision} any more")
            }
            Gate::CheckPasses => "gate: `kubectl meshup check` finds no failure".to_string(),
            Gate::NodeKernelsAtLeast { min } => {
                format!("gate: every Linux node runs kernel {min} or newer")
            }
            Gate::IstiodAmbientEnabled {
                namespace,
                revision,
            } => format!(
                "gate: istiod revision {revision} in {namespace} runs with PILOT_ENABLE_AMBIENT=true"
            ),
            Gate::ToolVersion { tool, version } => {
                format!("gate: `{}` reports {version}", tool_version_command(*tool))
            }
        }
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    /// A gate only reads.
    fn scope(&self, _: &Cx<'_>, _undo: bool) -> Checked {
        Ok(())
    }
}
