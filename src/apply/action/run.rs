//! `run`: an external tool (helm, istioctl, meshctl) with an argument vector, and the configuration
//! the plan carries to it as a private file.

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::describe::HintTarget;
use crate::apply::error::{StepError, StepFailure};
use crate::apply::permissions::Needs;
use crate::apply::tools::Program;
use crate::plan::action::Run;
use crate::plan::{CarriedConfig, Tool};

impl StepAction for Run<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        Some(self.tool)
    }

    fn hand_command(&self, at: HintTarget<'_>) -> String {
        at.command_line(Program::Tool(self.tool), self.args)
    }

    /// What the tool needs is its own business (it runs with the user's credentials).
    fn needs(&self, _: &mut Needs<'_>) {}

    fn state(&self) -> Option<&dyn KeepsState> {
        None
    }

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a> {
        async move {
            let StepRun { ex, step, mode, .. } = run;
            if mode == Mode::Dry {
                let mut command = self.hand_command(ex.hint(&step.cluster));
                if let Some(config) = self.config {
                    command.push_str(&format!(" {} FILE", config.kind.flag()));
                }
                ex.ui.step_progress(&format!("would run: {command}"));
                // The FILE it would hand the tool, as the plan shows it.
                for line in crate::plan::carried_config(&step.action) {
                    ex.ui.step_progress(&line);
                }
                return Ok(String::new());
            }
            // The carried configuration goes to the tool as a private file that lives as long as
            // the step: the file is what the reviewer saw in the plan, byte for byte.
            let carried = self.config.map(carried_file).transpose()?;
            let mut args = self.args.to_vec();
            if let (Some(config), Some(file)) = (self.config, &carried) {
                args.push(config.kind.flag().to_string());
                args.push(file.path().display().to_string());
            }
            let done = ex
                .run_tool(step, self.tool, &args, Some(self.timeout_seconds), false)
                .await?;
            if ex.interrupt.is_set() {
                return Err(StepError::Interrupted);
            }
            Ok(if done.is_some() {
                String::new()
            } else {
                "run by hand".to_string()
            })
        }
        .boxed()
    }

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}

/// Writes a plan's carried configuration to a file only this user can read (`tempfile` creates it
/// 0600), removed when the returned handle is dropped.
fn carried_file(config: &CarriedConfig) -> Result<tempfile::NamedTempFile, StepError> {
    use std::io::Write;
    let text =
        serde_saphyr::to_string(&config.document).map_err(|e| StepFailure::CarriedConfig {
            what: "the plan's carried configuration",
            source: Box::new(e),
        })?;
    let mut file = tempfile::Builder::new()
        .prefix("meshup-config-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| StepFailure::CarriedConfig {
            what: "a file for the carried configuration",
            source: Box::new(e),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| StepFailure::CarriedConfig {
            what: "a file for the carried configuration",
            source: Box::new(e),
        })?;
    Ok(file)
}
