//! `run`: an external tool (helm, istioctl, meshctl) with an argument vector, and the configuration
//! the plan carries to it.

use super::ActionKind;
use crate::plan::describe::command_line;
use crate::plan::model::{CarriedConfig, Tool};
use crate::plan::scope::{Checked, Cx};

pub struct Run<'a> {
    pub tool: Tool,
    pub args: &'a [String],
    pub timeout_seconds: u64,
    pub config: Option<&'a CarriedConfig>,
}

impl<'a> ActionKind<'a> for Run<'a> {
    fn type_name(&self) -> &'static str {
        "run"
    }

    fn describe(&self, _: Option<u32>) -> String {
        let mut line = format!("run {}", command_line(self.tool.program(), self.args));
        if let Some(config) = self.config {
            line.push_str(&format!(" {} FILE", config.kind.flag()));
        }
        line
    }

    fn chart_repo(&self) -> Option<&'a str> {
        if self.tool != Tool::Helm {
            return None;
        }
        self.args
            .iter()
            .position(|a| a == "--repo")
            .and_then(|i| self.args.get(i + 1))
            .map(String::as_str)
    }

    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        cx.tool(self.tool, self.args, false)
    }
}
