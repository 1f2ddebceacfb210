//! `manual`: something the tool cannot do (upgrade Kubernetes through the provider), shown and then
//! confirmed by a person, with the command they may run.

use super::ActionKind;
use crate::plan::model::{Action, Tool};
use crate::plan::scope::{Checked, Cx};

pub struct Manual<'a> {
    /// The action, for its description when it names no command.
    pub whole: &'a Action,
    pub instructions: &'a str,
    pub command: Option<&'a [String]>,
}

impl<'a> ActionKind<'a> for Manual<'a> {
    fn type_name(&self) -> &'static str {
        "manual"
    }

    fn describe(&self, _: Option<u32>) -> String {
        format!("manual: {}", self.instructions)
    }

    fn chart_repo(&self) -> Option<&'a str> {
        None
    }

    /// The command it shows is held to the same rules as a tool the plan runs.
    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        match self.command {
            None => Ok(()),
            Some([]) => Err("shows an empty command".to_string()),
            Some([program, args @ ..]) => {
                let tool = [Tool::Helm, Tool::Istioctl, Tool::Meshctl]
                    .into_iter()
                    .find(|t| t.program() == program)
                    .ok_or_else(|| {
                        format!(
                            "asks a person to run {program}; manual steps only show helm, istioctl or meshctl commands"
                        )
                    })?;
                cx.tool(tool, args, true)
            }
        }
    }
}
