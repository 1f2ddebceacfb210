//! `manual`: something only a person can do (upgrade Kubernetes through the provider): shown, then
//! confirmed on the terminal or ahead with `--confirm-manual`.

use jiff::Timestamp;

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::describe::{self, HintTarget};
use crate::apply::journal::{Confirmation, ConfirmedBy};
use crate::apply::permissions::Needs;
use crate::plan::Tool;
use crate::plan::action::Manual;

impl StepAction for Manual<'_> {
    fn changes_cluster(&self) -> bool {
        true
    }

    fn tool(&self) -> Option<Tool> {
        None
    }

    fn hand_command(&self, _: HintTarget<'_>) -> String {
        match self.command {
            Some(argv) => argv.join(" "),
            None => describe::action(self.whole, None),
        }
    }

    /// A person does it with their own access.
    fn needs(&self, _: &mut Needs<'_>) {}

    fn state(&self) -> Option<&dyn KeepsState> {
        None
    }

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a> {
        async move {
            let StepRun { ex, step, mode, .. } = run;
            let instructions = self.instructions;
            if mode == Mode::Dry {
                ex.ui.step_progress(&format!("manual: {instructions}"));
                return Ok(String::new());
            }
            let by = if ex.options.confirmed_manual.contains(&step.id) {
                ex.ui.step_progress(&format!(
                    "confirmed done ahead with --confirm-manual {}: {instructions}",
                    step.id
                ));
                ConfirmedBy::ConfirmManualFlag
            } else {
                let command = self.command.map(|argv| argv.join(" "));
                ex.manual(step, instructions, command.as_deref())?;
                ConfirmedBy::Terminal
            };
            if let Some(record) = ex.record(step) {
                record.confirmed = Some(Confirmation {
                    by,
                    at: Timestamp::now().to_string(),
                });
            }
            Ok(match by {
                ConfirmedBy::ConfirmManualFlag => "confirmed by --confirm-manual".to_string(),
                ConfirmedBy::Terminal => "confirmed".to_string(),
            })
        }
        .boxed()
    }

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}
